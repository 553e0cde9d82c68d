"""An example tool module: a multi-step task list that survives across turns and containers.

The list lives in Strands' ``agent.state``, which the session manager stores with the session and
restores on the next turn, in whatever container runs it. A tool reaches the agent through
``ToolContext`` (``@tool(context=True)``). State values must be JSON.

Stored under ``task_steps``: ``[{"step": 1, "text": "...", "done": false}, ...]``.
"""

from typing import Any

from strands import ToolContext, tool

STATE_KEY = "task_steps"


def _steps(context: ToolContext) -> list[dict[str, Any]]:
    return list(context.agent.state.get(STATE_KEY) or [])


def _listing(steps: list[dict[str, Any]]) -> str:
    if not steps:
        return "The task list is empty."
    return "\n".join(f"{s['step']}. [{'x' if s['done'] else ' '}] {s['text']}" for s in steps)


@tool(context=True)
def add_task_step(text: str, tool_context: ToolContext) -> str:
    """Add a step to the end of the user's task list. Returns the list."""
    steps = _steps(tool_context)
    steps.append({"step": len(steps) + 1, "text": text.strip(), "done": False})
    tool_context.agent.state.set(STATE_KEY, steps)
    return _listing(steps)


@tool(context=True)
def complete_task_step(step: int, tool_context: ToolContext) -> str:
    """Mark step number ``step`` of the user's task list as done. Returns the list."""
    steps = _steps(tool_context)
    if not 1 <= step <= len(steps):
        return f"There is no step {step}; the list has {len(steps)} steps."
    steps[step - 1]["done"] = True
    tool_context.agent.state.set(STATE_KEY, steps)
    return _listing(steps)


@tool(context=True)
def list_task_steps(tool_context: ToolContext) -> str:
    """Show the user's task list: each step's number, whether it is done, and its text."""
    return _listing(_steps(tool_context))
