"""Tools the agent may call. Kept small: each is a plain function Strands turns into a tool spec."""

from datetime import UTC, datetime

from strands import tool


@tool
def current_time() -> str:
    """Return the current date and time in UTC (ISO 8601). Use it for questions about today or now."""
    return datetime.now(UTC).isoformat(timespec="seconds")


DEFAULT_TOOLS = [current_time]
