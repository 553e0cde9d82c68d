"""A tool round shows in the history as what it is: the assistant's tool call, then the tool's
result (role "tool"), never as blank messages; the direct get_history action alike."""

from model_server import Reply

from tests.conftest import Api

SESSION = "user_arindam_convo_123"


def test_a_tool_round_is_a_tool_call_and_its_result_in_the_history(env, model_server):
    api = Api({**env, "MEMORY": "on"})
    model_server.queue(Reply.call_tool("remember", {"fact": "I like green tea."}), Reply.say("I will remember."))
    assert api.post(SESSION, "Remember that I like green tea.")[0] == 200

    status, _, body = api.history(SESSION)
    assert status == 200
    user, call, result, answer = body["messages"]
    assert (user["role"], user["text"]) == ("user", "Remember that I like green tea.") and "tool_calls" not in user
    assert call["role"] == "assistant" and call["text"] == ""
    assert [(c["name"], c["input"]) for c in call["tool_calls"]] == [("remember", {"fact": "I like green tea."})]
    assert result["role"] == "tool" and "tool_calls" not in result
    (tool_result,) = result["tool_results"]
    assert tool_result["id"] == call["tool_calls"][0]["id"] and tool_result["status"] == "success"
    assert tool_result["text"]  # what the tool told the model
    assert (answer["role"], answer["text"]) == ("assistant", "I will remember.") and "tool_results" not in answer
    assert not [m for m in body["messages"] if not m["text"] and not m.get("tool_calls") and not m.get("tool_results")]

    direct = api.invoke({"action": "get_history", "session_id": SESSION, "caller": "local"})
    assert direct["messages"] == body["messages"]
