"""`make deploy` / `make deploy-guided`, before SAM starts: are there AWS credentials and a region?

Without them SAM fails only after it has started: `sam deploy` with "Unable to resolve a region",
`sam deploy --guided` after some 45 questions. Both are found here as SAM will find them (botocore's
chain: SAM_ARGS' --profile/--region, samconfig.toml, the environment, ~/.aws), locally: nothing is
sent to AWS, so expired credentials still pass and SAM reports them. What is missing is said in one
line, with how to set it.

    python tools/deploy_check.py [--guided] [-- SAM_ARGS...]

Run by the SAM CLI's own Python (tools/sam), whose botocore is the one `sam deploy` uses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session

ROOT = Path(__file__).resolve().parents[1]
# Credentials from the instance metadata service, if any, are looked for once, briefly.
METADATA_TIMEOUT_SECONDS = "1"


def sam_options(sam_args: list[str]) -> argparse.Namespace:
    """The options of SAM_ARGS that decide where the credentials and the region come from."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--profile")
    parser.add_argument("--region")
    parser.add_argument("--config-env", default="default")
    parser.add_argument("--config-file", default="samconfig.toml")
    return parser.parse_known_args(sam_args)[0]


def samconfig_deploy_settings(config_file: Path, config_env: str) -> dict[str, Any]:
    """What samconfig.toml says for `sam deploy`: its global parameters, then its deploy ones."""
    try:
        config = tomllib.loads(config_file.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # SAM reports a broken file itself
    env = config.get(config_env, {})
    return {**env.get("global", {}).get("parameters", {}), **env.get("deploy", {}).get("parameters", {})}


def missing(sam_args: list[str], guided: bool) -> str | None:
    """One line naming what is missing and how to set it; None when SAM has what it needs."""
    options = sam_options(sam_args)
    saved = samconfig_deploy_settings(ROOT / options.config_file, options.config_env)
    profile = options.profile or saved.get("profile")
    os.environ.setdefault("AWS_METADATA_SERVICE_TIMEOUT", METADATA_TIMEOUT_SECONDS)
    os.environ.setdefault("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")
    try:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        region = options.region or saved.get("region") or session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        return f"the AWS profile {profile!r} is not in ~/.aws/config: run `aws configure --profile {profile}`"
    except botocore.exceptions.BotoCoreError as error:  # a credentials source that is set up but broken
        return f"AWS credentials could not be read ({error}): check `aws configure list`"
    lacks = []
    if credentials is None:
        lacks.append("no AWS credentials (run `aws configure` or `aws sso login`, "
                     "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if region is None and not guided:  # --guided asks for the region first, and saves it
        hint = "AWS_REGION is set, but the SAM CLI reads AWS_DEFAULT_REGION: " if os.environ.get("AWS_REGION") else ""
        lacks.append(f"no AWS region ({hint}export AWS_DEFAULT_REGION=us-east-1, or pass SAM_ARGS=\"--region ...\", "
                     "or run make deploy-guided once to save one in samconfig.toml)")
    return " and ".join(lacks) or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guided", action="store_true")
    parser.add_argument("sam_args", nargs="*", help="SAM_ARGS, split by the shell as for sam itself")
    args = parser.parse_args()
    problem = missing(args.sam_args, args.guided)
    if problem:
        print(f"make deploy{'-guided' if args.guided else ''}: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
