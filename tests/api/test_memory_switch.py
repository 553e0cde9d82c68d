"""GET /memory (and the direct get_memory action) says whether the agent remembers: with MEMORY=off
an empty list is not taken for "nothing learnt yet"."""

import pytest

from tests.conftest import Api


@pytest.mark.parametrize(("setting", "enabled"), [("off", False), ("on", True)])
def test_get_memory_says_whether_memory_is_on(env, setting: str, enabled: bool):
    api = Api({**env, "MEMORY": setting})
    status, _, body = api.request("GET", "/memory")
    assert status == 200 and body == {"enabled": enabled, "facts": []}
    assert api.invoke({"action": "get_memory"}) == {"enabled": enabled, "facts": []}


def test_memory_is_off_unless_asked_for(env):
    assert Api(env).request("GET", "/memory")[2]["enabled"] is False
