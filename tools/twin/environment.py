"""The function's environment when the twin runs it: `.env`, then what the twin must point at
itself (the turn queue, the management API), then the defaults a terminal wants.

Shared by `make dev` and `make invoke`. The template sets the same variables when deployed
(TURN_QUEUE_URL, SESSION_LEASE_SECONDS); the twin only swaps AWS's endpoints for its own.
"""

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .events import ACCOUNT, REGION

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
QUEUE_NAME = "turns.fifo"
# TurnDeadLetterQueue: where a turn goes after MAX_RECEIVES failed deliveries (the turn queue's
# RedrivePolicy names it), and from where the worker finalises it.
DEAD_LETTER_QUEUE_NAME = "turn-dead-letters.fifo"


def load_dotenv_file() -> None:
    """`.env` (or DOTENV_FILE) fills in what the shell did not set."""
    from dotenv import load_dotenv

    load_dotenv(os.environ.get("DOTENV_FILE") or ROOT / ".env", override=False)


def put_code_on_path() -> None:
    """The function's code root, first on the path as in Lambda: LAMBDA_TASK_ROOT (Lambda's name for
    it) when the function's environment sets one (`make bench-latency` runs an older tree's code
    so), else this tree's src."""
    root = os.environ.get("LAMBDA_TASK_ROOT") or str(SRC)
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)


def terminal_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """What a person at a terminal wants unless they said otherwise: short log lines, warnings and
    errors only (the twin's own line per request says the rest), no EMF metrics or traces, no
    price-map download at import."""
    return {"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env}


def queue_url(base_url: str) -> str:
    return f"{base_url}/_aws/sqs/{ACCOUNT}/{QUEUE_NAME}"


def queue_arn(name: str = QUEUE_NAME) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def function_environment(env: Mapping[str, str], base_url: str, function_timeout: float,
                         turn_timeout: float, aws_endpoint: str | None = None) -> dict[str, str]:
    """The environment both functions get from the twin, whose URL is ``base_url``; they reach its
    SQS and @connections at ``aws_endpoint`` when given (a proxy in front of the twin)."""
    aws = aws_endpoint or base_url
    function_env = terminal_defaults(env)
    # Mirrors the template's table: the lease outlives the longer of the two timeouts.
    function_env.setdefault("SESSION_LEASE_SECONDS", str(int(max(function_timeout, turn_timeout)) + 30))
    # The twin's own endpoints, whatever the shell says: a turn queued on a real queue would wait
    # there for a worker that never comes.
    function_env.update(
        TURN_QUEUE_URL=queue_url(aws),
        AWS_ENDPOINT_URL_SQS=f"{aws}/_aws/sqs",
        WEBSOCKET_CALLBACK_URL=f"{aws}/_aws/connections",
    )
    return function_env


def check_settings(env: Mapping[str, str]) -> None:
    """Raise the function's SettingsError (one line naming the variable) before the handler's
    import, which takes seconds, meets it.

    src/agent/settings.py reads only the standard library, so it is loaded on its own here; the
    package's __init__ would import LiteLLM. If that ever changes, the check is skipped and the
    function's init reports the same error a few seconds later.
    """
    spec = importlib.util.spec_from_file_location("_twin_settings_check", SRC / "agent" / "settings.py")
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return
    finally:
        sys.modules.pop(spec.name, None)
    try:
        module.Settings.from_env(env)
    except module.SettingsError as error:
        raise SettingsProblem(str(error)) from None


class SettingsProblem(ValueError):
    """A setting the function cannot use; the message names the variable."""
