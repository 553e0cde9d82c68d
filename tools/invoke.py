"""`make invoke EVENT=events/<file>.json`: run a function's handler on one event file, as
`sam local invoke <Function> -e <file>` would.

The function is AgentFunction (handler.app), or TurnWorkerFunction (handler.worker_app) for the
turn queue's sample events (events/worker_*.json) or with ``--function TurnWorkerFunction``.
The environment is `make dev`'s (the shell, then `.env`), with its terminal defaults; the context
is the twin's LambdaContext (FUNCTION_TIMEOUT, 29 s by default; TURN_TIMEOUT, 300 s, for the
worker). The event runs in this process: frames of a WebSocket event go to WEBSOCKET_CALLBACK_URL
if set (a running `make dev`), else to the event's own domain.
"""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from twin import environment
from twin.config import HANDLERS, Config
from twin.lambda_context import LambdaContext

WORKER_EVENT_PREFIX = "worker_"


def function_for(event_path: str, named: str | None) -> str:
    if named:
        return named
    return "TurnWorkerFunction" if Path(event_path).name.startswith(WORKER_EVENT_PREFIX) else "AgentFunction"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event", help="path of an event JSON file, e.g. events/post_message.json")
    parser.add_argument("--function", choices=sorted(HANDLERS), help="the template's function (default: from the file)")
    args = parser.parse_args()
    with open(args.event) as file:
        event = json.load(file)
    environment.load_dotenv_file()
    os.environ.update(environment.terminal_defaults(os.environ))
    environment.put_code_on_path()
    config = Config.from_env(os.environ)
    function = config.worker if function_for(args.event, args.function) == "TurnWorkerFunction" else config.agent
    module, name = function.handler.rsplit(".", 1)
    # After the environment: importing the handler's module is the function's init.
    lambda_handler = getattr(importlib.import_module(module), name)
    result = lambda_handler(event, LambdaContext(timeout_seconds=function.timeout, function_name=function.name))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
