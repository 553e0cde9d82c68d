"""AGENT_TOOLS: every Strands tool a named module defines is loaded; a module that cannot be used
stops start-up with one line naming it."""

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.tool_modules import ToolModuleError, load_tool_modules
from agent.tools import DEFAULT_TOOLS

WriteModule = Callable[[str, str], None]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write a module on a path of the test's own; forget what it imported afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_every_tool_a_module_defines_is_loaded_in_order(write_module: WriteModule) -> None:
    write_module("shop_tools", '''
        from strands import tool
        from strands.tools import PythonAgentTool

        HELPER = 42

        @tool
        def find_product(name: str) -> str:
            """Find a product by name."""
            return name

        def not_a_tool() -> None:
            pass

        @tool(name="price_of")
        def price(product: str) -> str:
            """The price of a product."""
            return "1 EUR"

        restock = PythonAgentTool("restock", {"name": "restock", "description": "Restock.",
                                              "inputSchema": {"json": {"type": "object"}}}, lambda use, **_: {})
    ''')
    tools = load_tool_modules(" shop_tools , ")
    assert [t.tool_name for t in tools] == ["find_product", "price_of", "restock"]


def test_the_shipped_examples_load_by_their_module_names() -> None:
    tools = load_tool_modules("agent_tools.orders,agent_tools.tasks", given=DEFAULT_TOOLS)
    assert [t.tool_name for t in tools] == ["get_order_status", "add_task_step", "complete_task_step",
                                            "list_task_steps"]


def test_a_module_with_no_tool_is_refused_by_name(write_module: WriteModule) -> None:
    write_module("empty_tools", '''
        def get_order_status(order_id: str) -> str:  # forgot @tool
            return "shipped"
    ''')
    with pytest.raises(ToolModuleError) as caught:
        load_tool_modules("agent_tools.orders,empty_tools")
    assert str(caught.value) == ("AGENT_TOOLS: module 'empty_tools' defines no tool "
                                 "(decorate a function with @strands.tool)")


def test_a_module_that_fails_to_import_is_refused_in_one_line(write_module: WriteModule) -> None:
    write_module("broken_tools", '''
        from strands import tool
        import a_package_nobody_installed
    ''')
    with pytest.raises(ToolModuleError) as caught:
        load_tool_modules("broken_tools")
    message = str(caught.value)
    assert message == ("AGENT_TOOLS: module 'broken_tools' could not be imported: "
                       "ModuleNotFoundError: No module named 'a_package_nobody_installed'")


def test_a_module_with_a_syntax_error_is_refused_in_one_line(write_module: WriteModule) -> None:
    write_module("typo_tools", "def oops(:\n    pass\n")
    with pytest.raises(ToolModuleError) as caught:
        load_tool_modules("typo_tools")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("AGENT_TOOLS: module 'typo_tools' could not be imported: SyntaxError:")


def test_a_module_that_does_not_exist_is_refused_by_name() -> None:
    with pytest.raises(ToolModuleError, match="module 'agent_tools.ordres' could not be imported"):
        load_tool_modules("agent_tools.ordres")


def test_two_tools_with_one_name_are_refused(write_module: WriteModule) -> None:
    write_module("clock_tools", '''
        from strands import tool

        @tool
        def current_time() -> str:
            """My own clock."""
            return "noon"
    ''')
    with pytest.raises(ToolModuleError) as caught:
        load_tool_modules("clock_tools", given=DEFAULT_TOOLS)
    assert str(caught.value) == ("AGENT_TOOLS: module 'clock_tools' defines tool 'current_time', "
                                 "a name the built-in tools already use; rename one of them")


def test_a_built_in_tool_imported_into_a_module_is_not_loaded_twice(write_module: WriteModule) -> None:
    write_module("reexport_tools", '''
        from agent.tools import current_time
        from agent_tools.orders import get_order_status
    ''')
    tools = load_tool_modules("agent_tools.orders,reexport_tools", given=DEFAULT_TOOLS)
    assert [t.tool_name for t in tools] == ["get_order_status"]
