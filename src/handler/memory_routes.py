"""The HTTP routes of a caller's memory: the facts the agent remembers, forgetting one or all.

A Powertools Router, given only what its routes use; the invocation's deadline comes through
``router.context`` (app.py appends it), the caller from the event's authorizer fields.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from agent import CallerMemory

from .callers import CallerRouter
from .http_answers import NO_CONTENT, documented, errors, json_response, no_content
from .schemas import FACT_ID_PATTERN, FactOut, FactsOut


def memory_routes(memory: CallerMemory, deployed: bool) -> Router:
    router = CallerRouter(deployed)
    caller, deadline = router.caller, router.deadline

    @router.get("/memory", summary="The facts your agent remembers across your sessions (MEMORY=on)",
                responses={200: documented(FactsOut, "Oldest first"), **errors(503)})
    def get_memory():
        facts = memory.facts(caller(), deadline())
        return json_response(200, FactsOut(enabled=memory.enabled, facts=[FactOut(**vars(f)) for f in facts]))

    @router.delete("/memory", summary="Forget everything about me", responses={**NO_CONTENT, **errors(409, 503)})
    def forget_everything():
        memory.forget_everything(caller(), deadline())
        return no_content()

    @router.delete("/memory/<fact_id>", summary="Forget one fact",
                   responses={**NO_CONTENT, **errors(404, 409, 503)})
    def forget_fact(fact_id: Annotated[str, Path(pattern=FACT_ID_PATTERN)]):
        memory.forget(caller(), fact_id, deadline())
        return no_content()

    return router
