"""The handler's side of approval (agent/approval.py): the answers a request carries, as the
agent takes them; what a paused turn's reply says; and what a turn asks, for the turn ledger.

A request answering pending tool calls has no message. The ledger keys a retry's idempotency on
what was asked, so the answers stand in for the message there: the same key with other answers is
422, as with another message.
"""

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from agent.approval import ApprovalAnswer, PendingCall

from .schemas import InterruptResponseIn


class Asking(Protocol):
    """A turn from any source (TurnRequest, QueuedTurn)."""

    @property
    def message(self) -> str | None: ...

    @property
    def interrupt_responses(self) -> Any: ...


def answers_of(responses: Iterable[InterruptResponseIn] | None) -> tuple[ApprovalAnswer, ...]:
    return tuple(ApprovalAnswer(r.id, r.approve, r.reason) for r in responses or ())


def responses_of(answers: Sequence[ApprovalAnswer]) -> list[InterruptResponseIn] | None:
    """The other way, for the turn queue's message; None for a turn that sends a message."""
    return [InterruptResponseIn(id=a.id, approve=a.approve, reason=a.reason) for a in answers] or None


def asked(turn: Asking) -> str:
    """The message, or the answers in a canonical form: what the ledger's digest is taken of."""
    # ApprovalAnswer or InterruptResponseIn: the same three fields.
    answers = [{"id": a.id, "approve": a.approve, "reason": a.reason} for a in turn.interrupt_responses or ()]
    if not answers:
        return turn.message or ""
    return "interrupt_responses:" + json.dumps(answers, sort_keys=True, separators=(",", ":"))


def interrupts_body(interrupts: Sequence[PendingCall]) -> dict[str, Any]:
    """A paused turn's reply gains ``interrupts``; any other reply is as it always was."""
    if not interrupts:
        return {}
    return {"interrupts": [{"id": c.id, "tool": c.tool, "input": c.input, "reason": c.reason} for c in interrupts]}
