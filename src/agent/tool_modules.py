"""The user's tool modules: ``AGENT_TOOLS``, comma-separated importable module names.

Every Strands tool a module defines at its top level is given to the agent: a function decorated
with ``@strands.tool`` (a ``DecoratedFunctionTool``) or any other ``AgentTool`` object. Modules
are imported once per container, at init (so SnapStart snapshots them). A module that cannot be
imported, or holds no tool, is a configuration mistake that must stop start-up: a deployed agent
silently missing its tools would answer wrongly instead of failing loudly. Two different tools
with one name would make Strands refuse every turn, so that stops start-up too.

Modules live in ``src/agent_tools/`` (shipped with the function: ``agent_tools.orders``) or,
locally, anywhere on ``PYTHONPATH``.
"""

import importlib
from collections.abc import Iterable

from strands.types.tools import AgentTool


class ToolModuleError(Exception):
    """A tool module that cannot be used. The message is one line naming the module and the cause."""


def module_names(value: str) -> list[str]:
    """``"a.b, c"`` -> ``["a.b", "c"]``; empty entries are ignored."""
    return [name.strip() for name in value.split(",") if name.strip()]


def load_tool_modules(value: str, given: Iterable[AgentTool] = ()) -> list[AgentTool]:
    """The tools of every module named in ``value`` (an ``AGENT_TOOLS`` string), in order.

    ``given``: tools the agent has anyway (``current_time``, the memory tools); a module's tool
    may be one of them (re-exported) but may not reuse one of their names.
    """
    owners: dict[str, str] = {tool.tool_name: "the built-in tools" for tool in given}
    seen = {id(tool) for tool in given}
    tools: list[AgentTool] = []
    for name in module_names(value):
        for tool in tools_in(name):
            if id(tool) in seen:
                continue
            if tool.tool_name in owners:
                raise ToolModuleError(f"AGENT_TOOLS: module {name!r} defines tool {tool.tool_name!r}, "
                                      f"a name {owners[tool.tool_name]} already use; rename one of them")
            owners[tool.tool_name], seen = f"module {name!r}", seen | {id(tool)}
            tools.append(tool)
    return tools


def tools_in(module_name: str) -> list[AgentTool]:
    """The tools module ``module_name`` holds at its top level, in definition order."""
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure at import is the module's, and stops start-up
        raise ToolModuleError(f"AGENT_TOOLS: module {module_name!r} could not be imported: "
                              f"{type(error).__name__}: {_first_line(error)}") from error
    unique: dict[int, AgentTool] = {}
    for value in vars(module).values():
        if isinstance(value, AgentTool):
            unique.setdefault(id(value), value)
    if not unique:
        raise ToolModuleError(f"AGENT_TOOLS: module {module_name!r} defines no tool "
                              "(decorate a function with @strands.tool)")
    return list(unique.values())


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"
