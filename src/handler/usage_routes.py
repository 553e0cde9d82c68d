"""GET /usage: what the calling caller has spent today (UTC) against CALLER_DAILY_TOKENS.

A Powertools Router, given only what its route uses; the deadline comes through
``router.context`` (app.py appends it), the caller from the event's authorizer fields.
"""

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from agent import Deadline
from agent.usage import CallerUsage

from .callers import CallerRouter
from .http_answers import ERRORS, documented, json_response
from .schemas import UsageOut


def usage_routes(usage: CallerUsage, deployed: bool) -> Router:
    router = CallerRouter(deployed)

    @router.get("/usage", summary="Your tokens today (UTC) and your daily token budget",
                responses={200: documented(UsageOut, "Counted as each turn is stored"), **ERRORS})
    def get_usage():
        caller, deadline = router.caller(), router.deadline()
        return json_response(200, UsageOut(**usage_body(usage, caller, deadline)))

    return router


def usage_body(usage: CallerUsage, caller: str, deadline: Deadline) -> dict[str, Any]:
    """GET /usage's body, and the direct action get_usage's answer."""
    today = usage.today(caller, deadline)
    return {"day": today.day, "input_tokens": today.input_tokens, "output_tokens": today.output_tokens,
            "turns": today.turns, "daily_token_budget": usage.daily_tokens or None}
