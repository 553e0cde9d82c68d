"""Tools the agent may call. Kept small: each is a plain function Strands turns into a tool spec."""

from datetime import datetime, timezone

from strands import tool


@tool
def current_time() -> str:
    """Return the current date and time in UTC (ISO 8601). Use it for questions about today or now."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


DEFAULT_TOOLS = [current_time]
