"""`make invoke EVENT=events/<file>.json`: run the handler on one event file, as `sam local invoke` would.

The environment is `make dev`'s (the shell, then `.env`), with its terminal defaults; the context
is the twin's LambdaContext (FUNCTION_TIMEOUT, 29 s by default). The event runs in this process:
frames of a WebSocket event go to WEBSOCKET_CALLBACK_URL if set (a running `make dev`), else to
the event's own domain.
"""

import argparse
import json
import os
import sys

from twin import environment
from twin.lambda_context import LambdaContext


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event", help="path of an event JSON file, e.g. events/post_message.json")
    args = parser.parse_args()
    with open(args.event) as file:
        event = json.load(file)
    environment.load_dotenv_file()
    os.environ.update(environment.terminal_defaults(os.environ))
    environment.put_code_on_path()
    from handler.app import lambda_handler  # after the environment: importing it is the function's init

    result = lambda_handler(event, LambdaContext())
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
