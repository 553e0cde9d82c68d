"""An example tool module: the status of an order, from canned data.

Replace the dictionary with a call to your order system. A tool's docstring is what the model
reads to decide when to call it, and its type hints become the parameters' schema.
"""

from strands import tool

ORDERS = {
    "A-100": "shipped on 2026-11-02, arriving 2026-11-05",
    "A-101": "being packed, ships tomorrow",
    "A-102": "delivered on 2026-10-28",
}


@tool
def get_order_status(order_id: str) -> str:
    """Return the delivery status of an order, given its id (such as A-100)."""
    status = ORDERS.get(order_id.strip().upper())
    if status is None:
        return f"There is no order {order_id}."
    return f"Order {order_id.strip().upper()}: {status}."
