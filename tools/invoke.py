"""`make invoke EVENT=events/<file>.json`: run the handler on one event file, as `sam local invoke` would."""

import argparse
import json
import sys

from lambda_twin import LambdaContext, handler, load_environment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("event", help="path of an event JSON file, e.g. events/post_message.json")
    args = parser.parse_args()
    with open(args.event) as file:
        event = json.load(file)
    load_environment()
    result = handler()(event, LambdaContext())
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
