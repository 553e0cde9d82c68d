"""The context object the Lambda runtime passes to a Python handler, for local invocations."""

import os
import time
import uuid
from dataclasses import dataclass, field

FUNCTION_NAME = "AgentFunction"
# template.yaml's FunctionTimeout default; FUNCTION_TIMEOUT overrides it locally.
DEFAULT_TIMEOUT_SECONDS = 29.0


def function_timeout() -> float:
    return float(os.environ.get("FUNCTION_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)


@dataclass
class LambdaContext:
    timeout_seconds: float = field(default_factory=function_timeout)
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
