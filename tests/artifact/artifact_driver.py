"""Run inside the built artifact under Python 3.13 (tests/artifact/test_artifact.py).

    python3.13 -I -S -B artifact_driver.py ARTIFACT_DIR import
    python3.13 -I -S -B artifact_driver.py ARTIFACT_DIR invoke EVENT_FILE

`-I -S`: no site-packages, no user directory, no PYTHON* variables, not even this script's own
folder on sys.path; the artifact is added by hand, so whatever imports must come from it (or
the standard library), and the driver reports any module that came from elsewhere.

`import` imports the handler with an audit hook that records every attempt to resolve a name
or open a connection, and reports them instead of raising (a library that swallows the error
would otherwise hide the attempt). `invoke` imports it and hands it one event, as Lambda does.
Output: one line `DRIVER {json}` on stdout.
"""

import json
import sys
import sysconfig
import time
import uuid

NETWORK_EVENTS = {
    "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.getnameinfo", "socket.sendto", "socket.sendmsg",
}


class LambdaContext:
    """The attributes the Python runtime's context object has (and Powertools reads)."""

    function_name = "AgentFunction"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:AgentFunction:live"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/AgentFunction"
    log_stream_name = "artifact-smoke"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 29

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def foreign_modules(artifact: str) -> list[str]:
    """Files of loaded modules that are neither in the artifact nor in the standard library."""
    allowed = (artifact, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    files = (getattr(m, "__file__", None) for name, m in list(sys.modules.items())
             if name not in ("__main__", "__mp_main__"))
    return sorted({f for f in files if f and not f.startswith(allowed)})


def main() -> None:
    artifact, mode = sys.argv[1], sys.argv[2]
    sys.path.insert(0, artifact)
    attempts: list[str] = []
    if mode == "import":
        sys.addaudithook(lambda event, args: attempts.append(f"{event} {args!r}") if event in NETWORK_EVENTS else None)
    started = time.perf_counter()
    from handler.app import lambda_handler  # noqa: E402  (after the path and the hook)

    report = {"import_seconds": time.perf_counter() - started, "network": attempts, "python": sys.version,
              "handler_file": sys.modules["handler.app"].__file__, "litellm_file": sys.modules["litellm"].__file__}
    if mode == "invoke":
        with open(sys.argv[3]) as handle:
            event = json.load(handle)
        report["response"] = lambda_handler(event, LambdaContext())
    report["foreign_modules"] = foreign_modules(artifact)
    print("DRIVER " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
