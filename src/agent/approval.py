"""Approval before acting: calls of the tools named in ``APPROVAL_TOOLS`` wait for a person.

Built on Strands' own interrupts. A hook on the tool call (``BeforeToolCallEvent``) raises an
interrupt for such a tool; the agent loop stops with stop_reason ``interrupt``, and the session
manager stores the pending call with the agent (``_internal_state.interrupt_state`` in
agent.json, under the usual lease and commit), so the answer may come in another request, another
container, days later. The next turn of the session then carries the person's answers instead of
a message: Strands resumes exactly where it stopped, the hook reads each answer, an approved call
runs, and a denied one is cancelled with the person's reason as the tool's result, which is what
the model reads before it goes on.

While a call waits, a new message is refused (ApprovalPending): the model's tool call has no
result yet, so nothing else can be said in that conversation until it has one.

Strands' interrupt state is only reachable as a private attribute of the agent: read through
model/compat.py (tests/approval/test_strands_interrupts.py fails if an upgrade moves it).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from strands import Agent
from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry
from strands.types.interrupt import InterruptResponseContent

from .errors import ApprovalPending, InvalidRequest
from .model.compat import interrupt_state

ALL_TOOLS = "*"
INTERRUPT_NAME = "approval"  # one interrupt per tool call; Strands makes its id unique per call
DENIED = "A person denied this call"


@dataclass(frozen=True)
class PendingCall:
    """A tool call waiting for a person: what they are shown."""

    id: str  # Strands' interrupt id: opaque, given back with the answer
    tool: str
    input: Any
    reason: str


@dataclass(frozen=True)
class ApprovalAnswer:
    """A person's answer to one pending call."""

    id: str
    approve: bool
    reason: str | None = None


class ApprovalTools(HookProvider):
    """The hook: a call of a named tool waits for an answer; a denial becomes the tool's result."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def needs_approval(self, tool: str) -> bool:
        return ALL_TOOLS in self.names or tool in self.names

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.ask)

    def ask(self, event: BeforeToolCallEvent) -> None:
        tool = event.tool_use["name"]
        if not self.needs_approval(tool):
            return
        # Raises InterruptException the first time; returns the answer once the turn resumes.
        reason = {"tool": tool, "input": event.tool_use.get("input"), "reason": f"{tool} needs a person's approval"}
        answer = event.interrupt(INTERRUPT_NAME, reason=reason)
        if not (isinstance(answer, dict) and answer.get("approve") is True):
            given = answer.get("reason") if isinstance(answer, dict) else None
            event.cancel_tool = f"{DENIED}: {given}" if given else f"{DENIED}."


def pending_calls(agent: Agent) -> list[PendingCall]:
    """The agent's calls still waiting for an answer (none unless its loop stopped for them)."""
    state = interrupt_state(agent)
    if not state.activated:
        return []
    return [_pending(interrupt.id, interrupt.reason) for interrupt in state.interrupts.values()
            if interrupt.response is None]


def _pending(interrupt_id: str, reason: Any) -> PendingCall:
    reason = reason if isinstance(reason, dict) else {}
    return PendingCall(id=interrupt_id, tool=str(reason.get("tool", "")), input=reason.get("input"),
                       reason=str(reason.get("reason", "")))


def resume_prompt(agent: Agent, answers: Sequence[ApprovalAnswer]) -> list[InterruptResponseContent]:
    """What resumes the stopped loop: Strands' interruptResponse blocks. InvalidRequest for an
    id that is not waiting (unknown, or answered already), before anything runs."""
    waiting = {call.id for call in pending_calls(agent)}
    ids = [answer.id for answer in answers]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("Each interrupt may be answered once per request; an id appears twice.")
    stale = [i for i in ids if i not in waiting]
    if stale:
        raise InvalidRequest(f"No tool call of this session is waiting for an answer with id {stale[0]!r} "
                             "(unknown, or answered already).")
    return [{"interruptResponse": {"interruptId": answer.id,
                                   "response": {"approve": answer.approve, "reason": answer.reason}}}
            for answer in answers]


def refuse_while_pending(agent: Agent, session_id: str) -> None:
    """A new message while calls wait: ApprovalPending, naming them."""
    waiting = pending_calls(agent)
    if waiting:
        named = ", ".join(f"{call.id} ({call.tool})" for call in waiting)
        raise ApprovalPending(f"Session {session_id} is waiting for a person to approve or deny a tool call: "
                              f"{named}. Answer with \"interrupt_responses\" before sending a message.")
