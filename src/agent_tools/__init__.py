"""Your tool modules: name them in AGENT_TOOLS (``agent_tools.orders,agent_tools.tasks``).

This folder ships with the function. Every function decorated with ``@strands.tool`` at a
module's top level becomes a tool the agent may call; see docs/agent.md.
"""
