import pytest

from agent.settings import DEFAULT_SYSTEM_PROMPT, Settings


def test_defaults_run_locally_on_files_with_no_model():
    settings = Settings.from_env({})
    assert settings.session_bucket is None and settings.session_dir == ".sessions"
    assert settings.session_prefix == "sessions" and settings.history_window == 40
    assert settings.max_message_chars == 16000 and settings.model_id is None
    assert settings.system_prompt == DEFAULT_SYSTEM_PROMPT


def test_values_are_read_and_trimmed():
    settings = Settings.from_env({
        "MODEL_ID": " openai/gpt-4o-mini ", "MODEL_PARAMS": '{"temperature": 0.2}', "SESSION_PREFIX": "/chats/",
        "HISTORY_WINDOW": "10", "SESSION_BUCKET": "bucket", "MODEL_API_KEY": "sk-secret",
    })
    assert settings.model_id == "openai/gpt-4o-mini" and settings.model_params == {"temperature": 0.2}
    assert settings.session_prefix == "chats" and settings.history_window == 10
    assert "sk-secret" not in repr(settings)  # settings may be logged; the key may not


@pytest.mark.parametrize("env", [
    {"HISTORY_WINDOW": "many"}, {"HISTORY_WINDOW": "1"}, {"MAX_MESSAGE_CHARS": "0"},
    {"MODEL_PARAMS": "[1, 2]"}, {"MODEL_PARAMS": "{not json"},
])
def test_a_malformed_setting_fails_at_start_up(env):
    with pytest.raises(ValueError):
        Settings.from_env(env)
