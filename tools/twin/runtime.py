"""Inside a container: Lambda's init (the handler's import), then the runtime's loop: wait for an
event, call the handler of the function it is for, send back its result or its error. One
invocation at a time.

Every container of the twin comes from one init that imports both functions' handler modules
(AgentFunction's and TurnWorkerFunction's, config.HANDLERS), each building its own services as
its own Lambda function's init would; an invocation runs the handler its function names.

Events and results cross as JSON, as they do in Lambda: a result that is not JSON, or larger than
Lambda's 6 MB, is a function error here too.
"""

import contextlib
import importlib
import json
import logging
import os
import signal
import time
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from .config import HANDLERS
from .environment import put_code_on_path
from .lambda_context import LambdaContext

MAX_RESULT_BYTES = 6 * 1024 * 1024


def init(env: Mapping[str, str]) -> dict[str, Any]:
    """Set the function's environment and import the handler (which builds the services), as
    Lambda's init does. Returns what the twin prints at start-up, or what stopped init."""
    # Ctrl-C (or a SIGTERM to the process group) reaches every process of the group; the twin
    # decides how containers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(env)
    put_code_on_path()
    started = time.monotonic()
    # The twin says a model set-up problem on its own model line; the function's init line for it
    # (agent.model.provider.SETUP_LOGGER) would say it twice, once per handler.
    logging.getLogger("agent.model.setup").disabled = True
    try:
        fake_credentials = _aws_defaults()
        from agent.settings import SettingsError
    except Exception as error:
        return {"failed": "init", "message": one_line(error)}
    try:
        for handler in HANDLERS.values():
            _handler(handler)
        from handler.app import services
    except SettingsError as error:
        return {"failed": "settings", "message": str(error)}
    except Exception as error:
        return {"failed": "init", "message": one_line(error)}
    return {"init_seconds": time.monotonic() - started, **_model_facts(services, fake_credentials)}


def _aws_defaults() -> bool:
    """The clients need a region and something to sign with, even when every call they make goes
    to the twin; real ones, when configured, are kept (S3 sessions need them). True when made up."""
    import boto3

    session = boto3.session.Session()
    if not session.region_name:
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    if session.get_credentials() is None:
        os.environ.update(AWS_ACCESS_KEY_ID="twin", AWS_SECRET_ACCESS_KEY="twin")
        return True
    return False


def _model_facts(services: Any, fake_credentials: bool) -> dict[str, Any]:
    from agent.model.credentials import no_aws_credentials, uses_aws

    settings = services.settings
    facts: dict[str, Any] = {
        "model_id": settings.model_id, "model_api_base": settings.model_api_base,
        "session_bucket": settings.session_bucket, "session_dir": settings.session_dir,
        "session_prefix": settings.session_prefix, "model_problem": None,
    }
    if settings.model_id and fake_credentials and uses_aws(settings.model_id):  # made-up ones cannot sign for Bedrock
        facts["model_problem"] = no_aws_credentials(settings.model_id)
        return facts
    # What a turn would answer (model_not_configured), said once at start-up instead.
    facts["model_problem"] = services.models.problem()
    if facts["model_problem"]:
        return facts
    if not settings.model_api_base:
        import litellm

        with contextlib.suppress(Exception):  # its public endpoint, when LiteLLM knows one (not Bedrock)
            facts["model_api_base"] = litellm.get_llm_provider(settings.model_id)[3]
    return facts


def serve(channel: Connection) -> None:
    """The runtime's loop, until the twin closes the channel."""
    while True:
        try:
            invocation = channel.recv()
        except (EOFError, OSError):
            return
        channel.send(invoke(_handler(invocation["handler"]), invocation))


def _handler(name: str) -> Any:
    """The function ``module.function`` names (its module imported once: the function's init)."""
    module, function = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), function)


def invoke(lambda_handler: Any, invocation: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(timeout_seconds=invocation["timeout"], function_name=invocation["function"],
                            aws_request_id=invocation["request_id"])
    try:
        result = json.dumps(lambda_handler(json.loads(invocation["event"]), context))
    except Exception as error:
        return {"error": {"errorType": type(error).__name__, "errorMessage": str(error), "where": _where(error)}}
    if len(result.encode()) > MAX_RESULT_BYTES:
        return {"error": {"errorType": "Function.ResponseSizeTooLarge",
                          "errorMessage": "Response payload size exceeded maximum allowed payload size "
                                          "(6291556 bytes)."}}
    return {"result": result}


def spawned(channel: Connection, env: Mapping[str, str]) -> None:
    """A container started on its own (spawn): its own init, reported, then the loop."""
    report = init(env)
    channel.send(report)
    if "failed" not in report:
        serve(channel)


def one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
