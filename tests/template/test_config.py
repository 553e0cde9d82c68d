"""What surrounds the template: its parameters and outputs, samconfig.toml, the Makefile's deploy
targets, events/ and events/env.json (the samples must match what is deployed)."""

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from pydantic import BaseModel

from agent.settings import Settings
from tests.template.stack import (
    AGENT,
    CONVERSATION_FUNCTIONS,
    EVENTS,
    ROOT,
    WORKER,
    Stack,
    environment,
    tool_environment,
    tool_python,
)
from tests.template.test_api import ROUTES, WEBSOCKET_ROUTES

# ---- parameters and outputs ------------------------------------------------------------------


def test_every_parameter_is_in_a_console_group_once(template: dict) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]

    assert sorted(grouped) == sorted(template["Parameters"])


def test_every_parameter_says_what_it_is(template: dict) -> None:
    for name, parameter in template["Parameters"].items():
        assert len(parameter.get("Description", "")) > 20, name


def test_outputs_name_the_apis_the_queue_the_bucket_and_the_functions(template: dict) -> None:
    outputs = set(template["Outputs"])

    assert {"ApiUrl", "ApiId", "WebSocketUrl", "WebSocketApiId", "TurnQueueUrl", "SessionsBucketName",
            "AgentFunctionArn", "AgentFunctionAliasArn"} <= outputs
    assert template["Outputs"]["TurnQueueUrl"]["Value"] == {"Ref": "TurnQueue"}


# ---- samconfig.toml and the Makefile ------------------------------------------------------------


def test_samconfig_deploys_the_stack_after_one_guided_deploy(template: dict) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    default = config["default"]
    deploy = default["deploy"]["parameters"]
    # in global, so that sam build (which builds for the Architecture) and sam deploy agree
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', default["global"]["parameters"]["parameter_overrides"]))

    assert config["version"] == 0.1
    assert default["global"]["parameters"]["stack_name"] == "stateful-agent"
    # the roles have generated names and no resource is named by the template: CAPABILITY_IAM suffices
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    assert set(overrides) <= set(template["Parameters"]) and "Architecture" in overrides
    assert "parameter_overrides" not in deploy, "deploy would ignore the global overrides sam build uses"
    # not cached: SAM hashes only the code folder, so a uv.lock change would ship stale wheels
    assert default["build"]["parameters"] == {"cached": False, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True
    for command in ("local_invoke", "local_start_api"):
        assert default[command]["parameters"]["env_vars"] == "events/env.json"


def test_no_resource_is_named_so_capability_iam_is_enough(template: dict) -> None:
    for name, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            assert not {"RoleName", "ManagedPolicyName"} & set(resource["Properties"]), name


@pytest.mark.parametrize("target, command", [
    ("build", "sam build"), ("deploy", "sam deploy"), ("deploy-guided", "sam deploy --guided")])
def test_make_builds_and_deploys_through_the_pinned_sam_cli(target: str, command: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(rf"^{target}: (.*)\n", makefile, re.M)
    assert rule and "## " in rule.group(1), "every target says what it does"
    assert re.search(rf"^\.PHONY:.*\b{target}\b", makefile, re.M)

    # What make would run (-n: printed, not run): the pinned CLI, outside the caller's venv.
    planned = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    runs = [line for line in planned.splitlines() if f"--project tools/sam {command}" in line]
    assert runs and all(line.startswith("env -u VIRTUAL_ENV ") for line in runs), planned


def test_setup_syncs_every_pinned_tool() -> None:
    setup = re.search(r"^setup: .*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert setup, "make setup"
    for project in ("tools/sam", "tools/checkov"):
        assert (ROOT / project / "uv.lock").exists(), project
        assert f"sync --frozen --quiet --project {project}" in setup.group(1)


# ---- events/env.json ---------------------------------------------------------------------------------


def test_env_json_sets_only_variables_the_template_declares(template: dict) -> None:
    """sam local applies env.json only to variables the template declares; others are dropped silently."""
    env_json = json.loads((EVENTS / "env.json").read_text())
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}

    assert set(CONVERSATION_FUNCTIONS) <= set(env_json) <= functions
    for name, variables in env_json.items():
        declared = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert set(variables) <= set(declared), name
        assert all(isinstance(value, str) for value in variables.values())
    assert env_json[AGENT] == env_json[WORKER], "queued turns run locally as the function's own would"


def test_env_json_runs_locally_on_files_and_a_local_model(defaults: Stack) -> None:
    local = json.loads((EVENTS / "env.json").read_text())[AGENT]
    settings = Settings.from_env({**environment(defaults), **local})

    assert settings.session_bucket is None
    assert (settings.session_dir or "").startswith("/tmp/"), "Lambda's code directory is read-only"
    assert (settings.model_id or "").startswith("openai/") and "host.docker.internal" in (settings.model_api_base or "")


# ---- events/ -------------------------------------------------------------------------------------------

HTTP_EVENTS = {
    "post_message.json": ("POST /sessions/{session_id}/messages", {"message": "Hey, my name is Arindam."}),
    "post_message_followup.json": ("POST /sessions/{session_id}/messages", {"message": "Do you remember my name?"}),
    "get_history.json": ("GET /sessions/{session_id}/messages", None),
    "delete_session.json": ("DELETE /sessions/{session_id}", None),
    "bad_request.json": ("POST /sessions/{session_id}/messages", "not JSON"),
}


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_every_event_file_is_a_json_object(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


@pytest.fixture(scope="module")
def generated_http_event() -> dict:
    """What `sam local generate-event apigateway http-api-proxy` makes (the SAM CLI's own sample)."""
    result = subprocess.run([*tool_python("sam", "sam"), "-m", "samcli", "local", "generate-event", "apigateway",
                             "http-api-proxy"], cwd=ROOT, env=tool_environment(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_http_events_have_the_shape_api_gateway_sends(generated_http_event: dict, name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    generated = generated_http_event
    route_key, _ = HTTP_EVENTS[name]
    method, route = route_key.split(" ")
    path = re.sub(r"\{(\w+)\}", lambda m: event["pathParameters"][m.group(1)], route)

    APIGatewayProxyEventV2Model.model_validate(event)
    assert set(event) <= set(generated)
    assert set(event["requestContext"]) <= set(generated["requestContext"])
    assert set(event["requestContext"]["http"]) == set(generated["requestContext"]["http"])
    assert (method, route) in ROUTES
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route_key
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == path
    assert event["requestContext"]["http"]["method"] == method
    assert event["requestContext"]["authorizer"]["iam"]["userArn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_http_event_bodies(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    _, expected = HTTP_EVENTS[name]

    if expected is None:
        assert "body" not in event
    elif expected == "not JSON":
        with pytest.raises(ValueError):
            json.loads(event["body"])
    else:
        assert event["isBase64Encoded"] is False
        assert json.loads(event["body"]) == expected


WEBSOCKET_EVENTS: dict[str, type[BaseModel]] = {
    "websocket_connect.json": APIGatewayWebSocketConnectEventModel,
    "websocket_send_message.json": APIGatewayWebSocketMessageEventModel,
    "websocket_disconnect.json": APIGatewayWebSocketDisconnectEventModel,
}


def test_every_event_file_is_expected() -> None:
    others = {"direct_invoke.json", "eventbridge_message.json", "sqs_message.json", "expire_idle_sessions.json",
              "worker_queued_turn.json", "env.json"}
    assert {p.name for p in EVENTS.glob("*.json")} == set(HTTP_EVENTS) | set(WEBSOCKET_EVENTS) | others


def test_the_workers_sample_is_a_turn_queue_record_the_worker_reads() -> None:
    """`make invoke EVENT=events/worker_queued_turn.json` runs it through TurnWorkerFunction's handler."""
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    from handler.schemas import QueuedTurn

    record, = SqsModel.model_validate(json.loads((EVENTS / "worker_queued_turn.json").read_text())).Records
    assert record.eventSourceARN.endswith(".fifo") and record.attributes.MessageGroupId
    assert QueuedTurn.model_validate_json(str(record.body)).connection is None  # `make invoke` posts no frames


@pytest.mark.parametrize("name", sorted(WEBSOCKET_EVENTS))
def test_websocket_events_have_the_shape_api_gateway_sends(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    WEBSOCKET_EVENTS[name].model_validate(event)
    context = event["requestContext"]
    assert context["routeKey"] in WEBSOCKET_ROUTES
    assert context["stage"] == "prod"  # the template's stage, which the function's role names too
    if context["routeKey"] == "$connect":  # AWS_IAM: the signed caller, as API Gateway verified it
        assert context["identity"]["userArn"].startswith("arn:aws:iam::")
    else:  # later events carry no identity: the connection does
        assert "userArn" not in context["identity"]
    if context["routeKey"] == "sendMessage":
        assert json.loads(event["body"])["action"] == "sendMessage"


@pytest.mark.parametrize("route", ["$connect", "sendMessage", "$default", "$disconnect"])
def test_the_twins_websocket_events_have_the_same_shape(route: str) -> None:
    from twin.events import websocket_event

    event = websocket_event(route, "L0SM9cOFvHcCIhw=", '{"action": "x"}', domain="127.0.0.1:3000",
                            identity={"userAgent": "test"}, query={"token": "t"}, headers={"Host": "127.0.0.1:3000"})
    models: dict[str, type[BaseModel]] = {"$connect": APIGatewayWebSocketConnectEventModel,
                                          "$disconnect": APIGatewayWebSocketDisconnectEventModel}
    models.get(route, APIGatewayWebSocketMessageEventModel).model_validate(event)


def test_other_sources_carry_a_direct_invocation_object() -> None:
    direct = json.loads((EVENTS / "direct_invoke.json").read_text())
    eventbridge = json.loads((EVENTS / "eventbridge_message.json").read_text())
    (record,) = json.loads((EVENTS / "sqs_message.json").read_text())["Records"]

    for payload in (direct, eventbridge["detail"], json.loads(record["body"])):
        assert set(payload) == {"session_id", "message"}
    assert {"detail-type", "detail", "source", "id"} <= set(eventbridge)
    assert record["eventSource"] == "aws:sqs"
    assert json.loads((EVENTS / "expire_idle_sessions.json").read_text()) == {"action": "expire_idle_sessions"}


def test_local_twin_serves_the_routes_the_template_deploys() -> None:
    """The twin (tools/twin) routes HTTP requests by docs/openapi.json and WebSocket messages by the
    template's route keys; its own paths (the chat page, /docs, /ws, /_aws/...) are no API route."""
    from twin.events import routes as twin_routes  # tools/ is on the path
    from twin.events import websocket_routes
    from twin.pages import RESERVED_PATHS, RESERVED_PREFIXES

    assert set(twin_routes()) == ROUTES
    assert websocket_routes() == WEBSOCKET_ROUTES
    for _, path in ROUTES:
        assert path not in RESERVED_PATHS and not path.startswith(RESERVED_PREFIXES), path


# ---- supply chain --------------------------------------------------------------------------------------

COMPROMISED_LITELLM = {"1.82.7", "1.82.8", "1.107.0"}


def test_compromised_litellm_releases_are_excluded_and_not_locked() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (litellm,) = [d for d in project["dependencies"] if re.match(r"litellm\b", d)]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}

    assert {f"!={version}" for version in COMPROMISED_LITELLM} <= set(re.findall(r"!=[\d.]+", litellm))
    assert locked["litellm"] not in COMPROMISED_LITELLM
    for tool in ("sam", "checkov"):
        tool_lock = tomllib.loads((ROOT / "tools" / tool / "uv.lock").read_text())
        assert all(p["name"] != "litellm" or p["version"] not in COMPROMISED_LITELLM for p in tool_lock["package"])


def test_the_artifact_keeps_the_clients_of_every_service_the_functions_call() -> None:
    """The build drops botocore's service models the function never calls (tools/build/trim.txt)."""
    kept = set(re.findall(r"^!botocore/data/([\w-]+)/\*$", (ROOT / "tools/build/trim.txt").read_text(), re.M))
    assert {"s3", "sqs", "apigatewaymanagementapi", "secretsmanager", "bedrock-runtime", "sts"} <= kept

