"""MODEL_PARAMS checked against what LiteLLM accepts for the provider, types included: a typo or
a wrong type stops start-up with one line naming it, instead of riding along on every turn."""

import pytest

from agent.settings import SettingsError
from tests.conftest import Api


@pytest.mark.parametrize("params, said", [
    ({"temprature": 0.3}, "MODEL_PARAMS has 'temprature', which openai/test-model does not take; "
                          "did you mean 'temperature'?"),
    ({"temperature": "hot"}, "MODEL_PARAMS temperature must be a number, not 'hot'."),
    ({"max_tokens": 1.5}, "MODEL_PARAMS max_tokens must be a whole number, not 1.5."),
    ({"stream": False}, "MODEL_PARAMS sets 'stream', which the agent sets itself on every call; remove it."),
])
def test_a_wrong_model_param_stops_start_up_with_one_line(env, params, said):
    import json

    with pytest.raises(SettingsError) as stopped:
        Api({**env, "MODEL_PARAMS": json.dumps(params)})
    assert str(stopped.value) == said


def test_params_the_provider_takes_reach_the_model(env, model_server):
    api = Api({**env, "MODEL_PARAMS": '{"temperature": 1, "max_tokens": 64, "top_p": 0.5}'})
    assert api.post("user_arindam_convo_123", "hello")[0] == 200
    sent = model_server.requests[-1]
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (1, 64, 0.5)


def test_a_param_bedrock_does_not_take_is_named_with_what_it_takes(env):
    with pytest.raises(SettingsError) as stopped:
        Api({**env, "MODEL_ID": "bedrock/us.amazon.nova-2-lite-v1:0", "MODEL_PARAMS": '{"frobnicate": 1}'})
    assert str(stopped.value).startswith("MODEL_PARAMS has 'frobnicate', which bedrock/us.amazon.nova-2-lite-v1:0 "
                                         "does not take; it takes ")
    assert "temperature" in str(stopped.value) and "stream" not in str(stopped.value)
