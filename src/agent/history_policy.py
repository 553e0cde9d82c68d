"""What happens to messages that outgrow the history window (HISTORY_POLICY).

- ``window``: Strands' SlidingWindowConversationManager; the oldest messages leave what the model
  sees (they stay stored, and GET /messages still returns them).
- ``summarize`` (default): Strands' SummarizingConversationManager, made to fold the older
  messages into a summary as soon as the history outgrows the window. Strands' manager on its own
  summarises only on a context overflow (or at a share of the model's context window).

The summary lives in the conversation manager's state, which the store keeps in agent.json: it is
restored with the session (no extra read) and never recomputed. A summary that cannot be made (the
provider failed) falls back to the window for that turn: the turn is stored, the oldest messages
leave the model's view, and the next overflow tries to summarise again. Failing the turn instead
would discard a good reply, and a summary that always fails would stop the session for good.
"""

import logging
from typing import Any

from strands.agent.conversation_manager import (
    ConversationManager,
    SlidingWindowConversationManager,
    SummarizingConversationManager,
)

from .model.compat import cut_point

logger = logging.getLogger(__name__)
# A summary is one more model call; with less time than this left, the window applies instead.
MIN_SUMMARY_SECONDS = 5.0
STOCK_NAMES = (SlidingWindowConversationManager.__name__, SummarizingConversationManager.__name__)


class EitherPolicyState:
    """Restores the state of either policy, and stores its own under Strands' class name.

    Strands refuses a state written by another manager class, so without this, changing
    HISTORY_POLICY (or upgrading sessions written before the summaries) would break every
    session; and Strands' stock managers can still read what is stored.
    """

    stock_name: str

    def restore_from_session(self, state: dict[str, Any]) -> Any:
        if state.get("__name__") in STOCK_NAMES:
            state = {**state, "__name__": type(self).__name__}
        return super().restore_from_session(state)  # type: ignore[misc]

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "__name__": self.stock_name}  # type: ignore[misc]


class SlidingWindow(EitherPolicyState, SlidingWindowConversationManager):
    stock_name = SlidingWindowConversationManager.__name__


class SummarizingWindow(EitherPolicyState, SummarizingConversationManager):
    """Summarise the oldest messages whenever the history is longer than ``window``."""

    stock_name = SummarizingConversationManager.__name__

    def __init__(self, window: int) -> None:
        # Keep about half the window, an odd number of messages, so that what follows the
        # user-role summary starts with the assistant and the roles keep alternating.
        super().__init__(summary_ratio=0.8, preserve_recent_messages=(window // 2) | 1)
        self.window = window

    def apply_management(self, agent: Any, **kwargs: Any) -> None:
        # Strands calls this when every invocation ends, failed or cancelled ones included; only
        # a turn that ended with a reply is worth a summary (the others are not stored).
        if len(agent.messages) <= self.window or agent.messages[-1]["role"] != "assistant":
            return
        removed, summary = self.removed_message_count, self.get_state().get("summary_message")
        if _seconds_left(agent) < MIN_SUMMARY_SECONDS:
            logger.warning("no time left for a summary; the window applies to this turn")
            self._slide(agent)
            return
        self.reduce_context(agent)  # best effort: Strands logs and swallows a failed summary
        if self.get_state().get("summary_message") is summary:
            # Strands counts the messages as removed before the summary is made; none were.
            self.removed_message_count = removed
            logger.warning("the history could not be summarised; the window applies to this turn")
            self._slide(agent)

    def _slide(self, agent: Any) -> None:
        """Drop the oldest messages past the window, keeping the summary made so far. What the
        model then sees must still open as providers require: with a user message that is not a
        tool's result, or after the (user-role) summary, with an assistant message."""
        messages = agent.messages
        summary = self.get_state().get("summary_message")
        first = 1 if summary is not None and messages and messages[0] == summary else 0
        target = first + max(0, len(messages) - first - self.window)
        if first:
            split = next((i for i in range(target, len(messages)) if messages[i]["role"] == "assistant"), len(messages))
        else:
            split = cut_point(messages, target)
        if split >= len(messages) or split <= first:
            return  # nothing can go without breaking the conversation's shape
        del messages[first:split]
        self.removed_message_count += split - first


def _seconds_left(agent: Any) -> float:
    """The turn's time left (its model carries the deadline); Strands' summary call runs on a loop
    of its own, out of reach of the turn's cancellation, so it is made only with time to spare."""
    deadline = getattr(agent.model, "deadline", None)
    return float("inf") if deadline is None else deadline.remaining()


def conversation_manager(policy: str, window: int) -> ConversationManager:
    """A fresh manager for one turn (managers hold per-agent state)."""
    if policy == "window":
        return SlidingWindow(window_size=window)
    return SummarizingWindow(window)
