"""What `sam local` provides around the handler, without Docker: the environment from `.env`,
a Lambda context object, and the handler itself. Shared by `make dev` and `make invoke`."""

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_NAME = "AgentFunction"


def load_environment() -> None:
    """`.env` (or DOTENV_FILE) fills in what the shell did not set; the code root goes on the path
    like Lambda's."""
    from dotenv import load_dotenv

    load_dotenv(os.environ.get("DOTENV_FILE", ROOT / ".env"), override=False)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF noise in a terminal
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    sys.path.insert(0, str(ROOT / "src"))


@dataclass
class LambdaContext:
    """The attributes of the context object the Lambda runtime passes to a Python handler."""

    timeout_seconds: float = 29.0
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def handler():
    """Import the handler the way Lambda does (once per process, after the environment is set)."""
    if str(ROOT / "src") not in sys.path:  # a spawned worker process starts without it
        sys.path.insert(0, str(ROOT / "src"))
    from handler.app import lambda_handler

    return lambda_handler
