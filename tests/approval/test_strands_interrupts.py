"""What approval.py relies on in Strands, so that an upgrade that moves it fails here first: the
interrupt state on the agent, stored with it by the session manager and restored into a new agent."""

from strands import Agent
from strands.interrupt import Interrupt, _InterruptState
from strands.types.session import SessionAgent

from agent.approval import ApprovalAnswer, PendingCall, pending_calls, resume_prompt


def test_the_interrupt_state_is_on_the_agent_and_survives_a_store_and_restore() -> None:
    agent = Agent(callback_handler=None)
    assert isinstance(agent._interrupt_state, _InterruptState)
    reason = {"tool": "cancel_order", "input": {"order_id": "A-1"}, "reason": "cancel_order needs a person's approval"}
    agent._interrupt_state.interrupts["i-1"] = Interrupt("i-1", "approval", reason)
    agent._interrupt_state.activate()

    stored = SessionAgent.from_agent(agent).to_dict()
    restored = Agent(callback_handler=None)
    SessionAgent.from_dict(stored).initialize_internal_state(restored)

    assert pending_calls(restored) == [PendingCall("i-1", "cancel_order", {"order_id": "A-1"},
                                                   "cancel_order needs a person's approval")]
    prompt = resume_prompt(restored, [ApprovalAnswer("i-1", True)])
    restored._interrupt_state.resume(prompt)  # Strands takes what resume_prompt builds
    assert restored._interrupt_state.interrupts["i-1"].response == {"approve": True, "reason": None}
