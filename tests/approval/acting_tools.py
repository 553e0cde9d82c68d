"""An acting tool for the approval tests, as a tool module (AGENT_TOOLS=tests.approval.acting_tools).

``cancel_order`` records every call it gets in a file per order id (the twin runs the function in
processes of its own, so memory would not show them). Each test cancels orders of its own
(``order_id()``), so what a test asserts on is its own.
"""

import tempfile
import uuid
from pathlib import Path

from strands import tool

CALLS = Path(tempfile.gettempdir()) / "approval-tests-cancel-order"


@tool
def cancel_order(order_id: str) -> str:
    """Cancel an order, given its id. The order is gone for good: ask before calling it."""
    CALLS.mkdir(exist_ok=True)
    with (CALLS / order_id).open("a") as calls:
        calls.write("called\n")
    return f"Order {order_id} is cancelled; the refund is on its way."


def cancelled(order_id: str) -> int:
    """How many times cancel_order ran for this order."""
    calls = CALLS / order_id
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def order_id() -> str:
    """An order id no other test uses (and a safe file name)."""
    return f"O-{uuid.uuid4().hex[:10]}"
