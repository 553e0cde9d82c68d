"""An acting tool for the approval tests, as a tool module (AGENT_TOOLS=tests.approval.acting_tools).

``cancel_order`` records every call it gets, per order id: each test cancels orders of its own
(``order_id()``), so what a test asserts on is its own.
"""

import uuid
from collections import defaultdict

from strands import tool

CANCELLED: defaultdict[str, int] = defaultdict(int)


@tool
def cancel_order(order_id: str) -> str:
    """Cancel an order, given its id. The order is gone for good: ask before calling it."""
    CANCELLED[order_id] += 1
    return f"Order {order_id} is cancelled; the refund is on its way."


def order_id() -> str:
    """An order id no other test uses."""
    return f"O-{uuid.uuid4().hex[:10]}"
