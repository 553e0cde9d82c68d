"""GET /sessions, GET and PATCH /sessions/{id}, and the direct actions, through the handler."""

from tests.conftest import Api


def test_list_get_rename_and_delete_through_the_http_api(any_api: Api) -> None:
    for session_id, text in (("trip", "Plan a trip to Japan"), ("name", "Hey, my name is Arindam.")):
        status, _, _ = any_api.request("POST", f"/sessions/{session_id}/messages", {"message": text})
        assert status == 200
    status, _, body = any_api.request("GET", "/sessions?limit=1")
    assert status == 200 and [s["session_id"] for s in body["sessions"]] == ["name"]
    assert body["sessions"][0]["title"] == "Hey, my name is Arindam." and body["sessions"][0]["message_count"] == 2
    status, _, body = any_api.request("GET", f"/sessions?limit=1&cursor={body['next_cursor']}")
    assert [s["session_id"] for s in body["sessions"]] == ["trip"] and body["next_cursor"] is None

    status, _, body = any_api.request("PATCH", "/sessions/trip", {"title": "Japan in April"})
    assert status == 200 and body["title"] == "Japan in April"
    for bad in ({"title": ""}, {"title": "x" * 201}, {}):
        status, _, body = any_api.request("PATCH", "/sessions/trip", bad)
        assert status == 400, body
    status, _, body = any_api.request("GET", "/sessions/trip")
    assert status == 200 and body["title"] == "Japan in April"
    assert any_api.request("GET", "/sessions?cursor=garbage")[0] == 400
    assert any_api.request("GET", "/sessions/nope")[2]["error"]["code"] == "session_not_found"

    assert any_api.request("DELETE", "/sessions/trip")[0] == 204
    assert [s["session_id"] for s in any_api.request("GET", "/sessions")[2]["sessions"]] == ["name"]
    assert any_api.request("GET", "/sessions", caller="someone-else")[2]["sessions"] == []


def test_the_direct_actions_list_get_and_rename(api: Api) -> None:
    api.invoke({"session_id": "d1", "message": "hello there", "caller": "step-functions"})
    listed = api.invoke({"action": "list_sessions", "caller": "step-functions"})
    assert [s["title"] for s in listed["sessions"]] == ["hello there"] and listed["next_cursor"] is None
    renamed = api.invoke({"action": "rename_session", "caller": "step-functions", "session_id": "d1", "title": "Hi"})
    assert renamed["title"] == "Hi"
    assert api.invoke({"action": "get_session", "caller": "step-functions", "session_id": "d1"})["message_count"] == 2
    assert api.invoke({"action": "rename_session", "caller": "step-functions", "session_id": "d1",
                       "title": ""})["error"]["code"] == "invalid_request"
