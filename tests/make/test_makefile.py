"""The Makefile as a newcomer meets it: `make help`, `make deploy*` without AWS set up, `make invoke`.

make runs in a subprocess with an environment of the test's own: a HOME without ~/.aws, no AWS
variables, no instance metadata service; nothing is sent to AWS.
"""

import json
import os
import subprocess
from pathlib import Path

import deploy_check
import pytest

ROOT = Path(__file__).resolve().parents[2]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The shell of someone who has not configured AWS (PATH and uv's cache kept)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "MAKE", "MFLAGS")) and name not in {"DOTENV_FILE", "PORT", "ARCH"}}
    empty_dotenv = home / "empty.env"
    empty_dotenv.touch()
    return {**env, "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", "DOTENV_FILE": str(empty_dotenv), **extra}


def make(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_help_shows_the_values_of_the_variables_it_names(tmp_path: Path) -> None:
    shown = make("help", "PORT=4321", "ARCH=x86_64", "CHROMIUM=/opt/chromium/chrome", env=clean_env(tmp_path))

    assert shown.returncode == 0, shown.stderr
    assert "$(" not in shown.stdout
    assert "ws://.../ws on 127.0.0.1:4321" in shown.stdout
    assert "if /opt/chromium/chrome is missing" in shown.stdout
    assert "build/artifact-x86_64 (ARCH=arm64|x86_64)" in shown.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("target", "said"), [
    ("deploy", "make deploy: no AWS credentials (run `aws configure`"),
    ("deploy-guided", "make deploy-guided: no AWS credentials (run `aws configure`"),
])
def test_deploy_without_credentials_says_so_in_one_line_before_sam_starts(tmp_path: Path, target: str,
                                                                          said: str) -> None:
    result = make(target, env=clean_env(tmp_path))

    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if not line.startswith("make: ***")]
    assert len(lines) == 1 and lines[0].startswith(said), result.stdout + result.stderr
    assert ("no AWS region" in lines[0]) is (target == "deploy")  # --guided asks for the region itself


@pytest.mark.slow
def test_deploy_without_a_region_names_the_variable_sam_reads(tmp_path: Path) -> None:
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret", AWS_REGION="eu-west-1")

    result = make("deploy", env=env)

    assert result.returncode != 0
    assert "make deploy: no AWS region (AWS_REGION is set, but the SAM CLI reads AWS_DEFAULT_REGION" in result.stderr
    assert "credentials" not in result.stderr


@pytest.mark.slow
def test_invoke_of_a_websocket_event_without_a_region_answers(tmp_path: Path) -> None:
    """The management client needs a region; none configured, the twin's is used (as make dev does)."""
    result = make("invoke", "EVENT=events/websocket_send_message.json",
                  env=clean_env(tmp_path, SESSION_DIR=str(tmp_path / "sessions")))

    assert "NoRegionError" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout[result.stdout.index("{"):])["statusCode"] == 200


@pytest.mark.slow
@pytest.mark.parametrize(("configured", "region"), [
    ({}, "us-east-1"),
    ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
    ({"AWS_DEFAULT_REGION": "eu-west-2"}, None),  # the shell's, untouched
    ({"AWS_PROFILE": "work"}, None),  # the profile's
])
def test_invoke_gives_a_region_only_when_none_is_configured(tmp_path: Path, configured: dict[str, str],
                                                            region: str | None) -> None:
    planned = make("-n", "invoke", "EVENT=events/websocket_send_message.json", env=clean_env(tmp_path, **configured))

    command = planned.stdout.splitlines()[-1]
    assert command.endswith("tools/invoke.py events/websocket_send_message.json")
    assert (f"AWS_DEFAULT_REGION={region} " in command) if region else ("AWS_DEFAULT_REGION=" not in command)


# ---- where deploy_check finds what SAM will find (in-process, botocore's chain) -----------------


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "samconfig.toml").write_text('version = 0.1\n[default.deploy.parameters]\n')
    return tmp_path


def test_credentials_and_a_region_in_the_environment_are_enough(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    assert deploy_check.missing(["--config-file", str(no_aws / "samconfig.toml")], guided=False) == (
        "no AWS region (export AWS_DEFAULT_REGION=us-east-1, or pass SAM_ARGS=\"--region ...\", "
        "or run make deploy-guided once to save one in samconfig.toml)")
    assert deploy_check.missing(["--config-file", str(no_aws / "samconfig.toml"), "--region", "eu-west-1"],
                                guided=False) is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert deploy_check.missing(["--config-file", str(no_aws / "samconfig.toml")], guided=False) is None


def test_a_profile_and_the_region_saved_by_guided_are_found(no_aws: Path) -> None:
    (no_aws / "credentials").write_text("[work]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n")
    (no_aws / "samconfig.toml").write_text('version = 0.1\n[default.deploy.parameters]\nregion = "eu-west-1"\n'
                                           'profile = "work"\n')

    assert deploy_check.missing(["--config-file", str(no_aws / "samconfig.toml")], guided=False) is None


def test_a_profile_that_does_not_exist_is_named(no_aws: Path) -> None:
    problem = deploy_check.missing(["--config-file", str(no_aws / "samconfig.toml"), "--profile", "wrok"],
                                   guided=True)

    assert problem == "the AWS profile 'wrok' is not in ~/.aws/config: run `aws configure --profile wrok`"
