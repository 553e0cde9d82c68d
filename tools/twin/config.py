"""The twin's own settings: the port, and the containers of each function with their timeouts.

They describe what the template deploys (FunctionTimeout, TurnTimeout, reserved concurrency);
the function never reads them. A malformed value stops `make dev` with one line naming it.
"""

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .environment import SettingsProblem

# template.yaml's defaults: FunctionTimeout and TurnTimeout
DEFAULT_FUNCTION_TIMEOUT = 29.0
DEFAULT_TURN_TIMEOUT = 300.0
# template.yaml's Handler of each function (a test holds them equal)
AGENT_HANDLER = "handler.app.lambda_handler"
WORKER_HANDLER = "handler.worker_app.lambda_handler"
HANDLERS = {"AgentFunction": AGENT_HANDLER, "TurnWorkerFunction": WORKER_HANDLER}


@dataclass(frozen=True)
class Function:
    """One Lambda function of the template, as the twin runs it."""

    name: str
    timeout: float
    containers: int

    @property
    def handler(self) -> str:
        """module.function, as the template's Handler says."""
        return HANDLERS[self.name]


@dataclass(frozen=True)
class Config:
    port: int = 3000
    workers: int = 4  # AgentFunction containers
    turn_workers: int = 2  # TurnWorkerFunction containers
    function_timeout: float = DEFAULT_FUNCTION_TIMEOUT
    turn_timeout: float = DEFAULT_TURN_TIMEOUT
    model_check: bool = True
    # Where the functions reach the twin's SQS and @connections: None, the twin itself; a proxy in
    # front of the twin (`make bench-latency` puts one that delays each request, as AWS's would).
    aws_endpoint: str | None = None
    # fork: containers forked from one process that ran init (Linux); spawn: each runs init itself
    start_method: str = "fork" if sys.platform.startswith("linux") else "spawn"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        return cls(
            port=_number(env, "PORT", 3000, 0, 65535),
            workers=_number(env, "WORKERS", 4, 1, 64),
            turn_workers=_number(env, "TURN_WORKERS", 2, 1, 64),
            function_timeout=float(_number(env, "FUNCTION_TIMEOUT", int(DEFAULT_FUNCTION_TIMEOUT), 1, 900)),
            turn_timeout=float(_number(env, "TURN_TIMEOUT", int(DEFAULT_TURN_TIMEOUT), 1, 900)),
            model_check=_choice(env, "MODEL_CHECK", ("on", "off"), "on") == "on",
        )

    @property
    def agent(self) -> Function:
        return Function("AgentFunction", self.function_timeout, self.workers)

    @property
    def worker(self) -> Function:
        return Function("TurnWorkerFunction", self.turn_timeout, self.turn_workers)


def _number(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise SettingsProblem(f"{name} must be a whole number from {minimum} to {maximum}, not {raw!r}.")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsProblem(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value
