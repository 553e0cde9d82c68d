"""What the test model says when no reply is queued: read from the one request it was sent.

The server keeps no memory of its own. All it "knows" about the user is what the client put in
this request: earlier user messages, a summary Strands put in their place, and the facts in the
system prompt's memory section. So a test that gets the right answer knows the client sent the
right context, and a test that gets "I don't know" knows something was lost on the way.

The memory section is the project's format: a heading line containing "remember about this user",
then one ``- [<fact_id>] <text>`` line per fact.

Tools (tool_answers.py): a tool the user names ("use get_order_status for order A-100") or
describes by its name's words ("what is the status of order A-100?") is called, its arguments
picked from the message; and when Strands' structured output tool is offered, it is called with an
object made to fit its schema.
"""

import re
from dataclasses import dataclass
from typing import Any

import tool_answers

SUMMARY_HEADING = "## Conversation Summary"
SUMMARY_BULLET = "* The user said: "
# The last user message Strands' summariser appends to what it asks the model to summarise.
SUMMARY_REQUEST = "Please summarize this conversation."
MEMORY_HEADING = "remember about this user"

QUESTION_WORDS = {
    "what", "who", "whom", "whose", "where", "when", "why", "how", "which", "do", "does", "did", "is", "are",
    "was", "were", "can", "could", "would", "will", "should", "shall", "may", "might", "have", "has", "am",
}
# Requests, not statements, even when they say "my": "Tell me my schedule", "Please list my facts".
IMPERATIVES = {"tell", "show", "give", "list", "summarize", "summarise", "please", "forget", "explain", "describe"}
# Openers to look past when deciding how a sentence starts: "Hey, my name is ..." is a statement.
OPENERS = re.compile(r"^(?:(?:hey|hi|hello|oh|ok|okay|so|well|also|and|btw|by the way|actually|fyi)\b[,!.]?\s*)+",
                     re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|mine|myself)\b", re.IGNORECASE)
NAME_QUESTION = re.compile(r"\bname\b", re.IGNORECASE)
NAME = re.compile(r"\b(?:my name is|my name's|call me)\s+([\w'-]+)", re.IGNORECASE)
# "Forget that I like tea", "Please forget my name", "Can you forget where I live?"
FORGET = re.compile(r"^(?:please\s+|can you\s+|could you\s+|would you\s+)?forget\b(?:\s+(?:that|about|the fact that))*"
                    r"\s*(.*?)[\s?.!]*$", re.IGNORECASE)
RECALL = re.compile(
    r"\b(?:know|remember|recall)\b.*\babout me\b"
    r"|\bwhat (?:have|did) i (?:tell|told|say|said|mention(?:ed)?)\b"
    r"|\bwhat (?:did|have) we (?:discuss(?:ed)?|talk(?:ed)?|chat(?:ted)?|say|said|cover(?:ed)?)\b",
    re.IGNORECASE)
TOPIC = re.compile(
    r"\b(?:discuss(?:ed)?|talk(?:ed)?|chat(?:ted)?|say|said|tell you|told you|mention(?:ed)?)\s+"
    r"(?:about|regarding|on)\s+(.+?)[\s?.!]*$", re.IGNORECASE)
# Words that say nothing about which fact is meant: "forget that I like tea" is about "like tea".
FILLER = {
    "i", "i'm", "my", "me", "mine", "that", "the", "a", "an", "about", "is", "am", "are", "was", "to", "of",
    "please", "you", "and", "what", "where", "who", "when", "how", "which", "it", "everything",
}


@dataclass(frozen=True)
class Answer:
    """Text to say, or a tool to call; ``kind`` is how the server's log names it."""

    text: str | None = None
    tool: tuple[str, dict[str, Any]] | None = None
    kind: str = "text"


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def is_question(sentence: str) -> bool:
    sentence = OPENERS.sub("", sentence.strip())
    first = sentence.split(maxsplit=1)[0].lower().strip(",") if sentence else ""
    return sentence.endswith("?") or (first in QUESTION_WORDS and not sentence.endswith((".", "!")))


def states_fact(sentence: str) -> bool:
    """A first-person statement ("My name is X.", "I like tea.", "I work as a nurse.")."""
    opened = OPENERS.sub("", sentence.strip())
    first = opened.split(maxsplit=1)[0].lower().strip(",") if opened else ""
    return not is_question(sentence) and first not in IMPERATIVES and bool(FIRST_PERSON.search(opened))


def asks_to_forget(text: str) -> re.Match[str] | None:
    return FORGET.match(OPENERS.sub("", text.strip()))


def remembered_facts(system: str) -> list[tuple[str, str]]:
    """(fact_id, text) of every fact under the system prompt's memory heading."""
    facts: list[tuple[str, str]] = []
    inside = False
    for line in system.splitlines():
        if MEMORY_HEADING in line.lower():
            inside = True
        elif inside and line.lstrip().startswith("#"):
            inside = False
        elif inside and (fact := re.match(r"\s*[-*]\s*\[([^\]]+)\]\s*(.+?)\s*$", line)):
            facts.append((fact.group(1), fact.group(2)))
    return facts


def said_in_summary(text: str) -> list[str]:
    """The user statements an earlier summary (ours) carried over."""
    return [line.strip()[len(SUMMARY_BULLET):] for line in text.splitlines()
            if line.strip().startswith(SUMMARY_BULLET)]


class Conversation:
    """One request's messages, seen the way the answers need them."""

    def __init__(self, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        self.system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
        self.messages = [m for m in messages if m.get("role") != "system"]
        self.tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        self.tool_specs = {t.get("function", {}).get("name"): t.get("function", {}) for t in body.get("tools") or []}
        self.last = self.messages[-1] if self.messages else {}
        self.latest = text_of(self.last).strip()

    def earlier_user_texts(self) -> list[str]:
        """User messages before the last one, summaries included as they were sent."""
        return [text_of(m) for m in self.messages[:-1] if m.get("role") == "user"]

    def user_said(self, include_last: bool = False) -> list[str]:
        """Every user message in order, a summary's carried-over statements in its place."""
        said: list[str] = []
        for message in self.messages if include_last else self.messages[:-1]:
            text = text_of(message).strip()
            if message.get("role") != "user" or not text or text == SUMMARY_REQUEST:
                continue
            said.extend(said_in_summary(text) if SUMMARY_HEADING in text else [text])
        return said

    def statements(self) -> list[str]:
        """What the user has told the model so far: remembered facts, then this conversation's statements."""
        found = [text for _, text in remembered_facts(self.system)]
        found += [s for s in self.user_said() if not is_question(s)]
        return list(dict.fromkeys(found))  # a fact remembered and said again is one fact

    def tool_name(self, tool_call_id: str | None) -> str | None:
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                if call.get("id") == tool_call_id:
                    return call.get("function", {}).get("name")
        return None


def answer(body: dict[str, Any]) -> Answer:
    """The default answer to one chat-completions request."""
    chat = Conversation(body)
    if not chat.messages:
        return Answer("Hello!")
    if "conversation summarizer" in chat.system.lower() or chat.latest == SUMMARY_REQUEST:
        return Answer(summary(chat), kind="summary")
    if chat.last.get("role") == "tool":
        return structured(chat, chat.latest) or after_tool(chat)
    if chat.last.get("role") == "user" and (said := named_tool(chat) or remember(chat) or forget(chat)
                                            or recall(chat) or described_tool(chat) or structured(chat, chat.latest)):
        return said
    return Answer(f"Noted: {chat.latest}")


def named_tool(chat: Conversation) -> Answer | None:
    """A call of the tool the latest message names ("use get_order_status for order A-100")."""
    name = tool_answers.named(chat.latest, chat.tool_specs)
    return Answer(tool=(name, tool_answers.arguments(chat.tool_specs[name], chat.latest, name)), kind="tool") \
        if name else None


def described_tool(chat: Conversation) -> Answer | None:
    """A call of the tool whose name's words the latest message uses ("the status of order A-100")."""
    name = tool_answers.described(chat.latest, chat.tool_specs)
    return Answer(tool=(name, tool_answers.arguments(chat.tool_specs[name], chat.latest, name)), kind="tool") \
        if name else None


def structured(chat: Conversation, source: str) -> Answer | None:
    """When Strands offers its structured output tool: a call with an object that fits its schema,
    strings taken from ``source`` (the user's message, or the result of the tool just called)."""
    spec = chat.tool_specs.get(tool_answers.STRUCTURED_OUTPUT)
    if spec is None:
        return None
    value = tool_answers.fitting(spec.get("parameters") or {}, source)
    return Answer(tool=(tool_answers.STRUCTURED_OUTPUT, value), kind="tool")


def summary(chat: Conversation) -> str:
    """Every user statement carried over verbatim, so no fact is lost to summarisation."""
    said = chat.user_said(include_last=True) or ["(nothing)"]
    lines = [SUMMARY_HEADING] + [f"{SUMMARY_BULLET}{text}" for text in said]
    results = [(chat.tool_name(m.get("tool_call_id")), text_of(m)) for m in chat.messages if m.get("role") == "tool"]
    if results:
        lines += ["", "## Tools Executed"] + [f"* {name}: {result}" for name, result in results]
    return "\n".join(lines)


def after_tool(chat: Conversation) -> Answer:
    name = chat.tool_name(chat.last.get("tool_call_id"))
    if name == "remember":
        return Answer("I'll remember that.")
    if name == "forget":
        return Answer("I've forgotten that.")
    return Answer(f"The tool returned: {chat.latest}")


def remember(chat: Conversation) -> Answer | None:
    """A remember call for the latest message's first-person statements, unless already remembered."""
    if "remember" not in chat.tools or asks_to_forget(chat.latest):
        return None
    facts = [s for s in sentences(chat.latest) if states_fact(s)]
    known = {text for _, text in remembered_facts(chat.system)}
    if not facts or " ".join(facts) in known:
        return None
    return Answer(tool=("remember", {"fact": " ".join(facts)}), kind="tool")


def forget(chat: Conversation) -> Answer | None:
    """A forget call for the remembered fact holding every word the user named ("forget my name")."""
    asked = asks_to_forget(chat.latest)
    if "forget" not in chat.tools or not asked:
        return None
    wanted = words(asked.group(1)) - FILLER
    matching = [fact_id for fact_id, text in remembered_facts(chat.system) if wanted <= words(text)]
    if not wanted or not matching:
        return Answer("I don't have anything like that to forget.")
    return Answer(tool=("forget", {"fact_id": matching[-1]}), kind="tool")


def recall(chat: Conversation) -> Answer | None:
    """Answers to "what is my name?" and "what do you know about me / did we discuss (about X)?"."""
    if is_question(chat.latest) and NAME_QUESTION.search(chat.latest) and not re.search(r"\byour name\b",
                                                                                     chat.latest, re.I):
        return their_name(chat)
    return told(chat) if RECALL.search(chat.latest) else None


def their_name(chat: Conversation) -> Answer:
    """The name the user gave most recently: in this conversation (a summary included), else in memory."""
    remembered = [text for _, text in remembered_facts(chat.system)]
    for text in chat.earlier_user_texts()[::-1] + remembered[::-1]:
        if named := NAME.search(text):
            return Answer(f"Yes, your name is {named.group(1)}.")
    return Answer("I don't know your name yet.")


def told(chat: Conversation) -> Answer:
    """Every statement the user made, or those about the topic the question names."""
    statements = chat.statements()
    topic = TOPIC.search(chat.latest)
    if not topic or topic.group(1).lower() in {"me", "myself"}:
        return Answer("You told me: " + " ".join(statements) if statements else "Nothing yet.")
    subject = topic.group(1)
    wanted = words(subject) - FILLER
    about = [s for s in statements if all(w in s.lower() for w in wanted)]  # "japan" finds "Japanese" too
    return Answer(f"About {subject}, you told me: " + " ".join(about) if about else f"We haven't discussed {subject}.")


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w']+", text.lower()))

