"""template.yaml, samconfig.toml and events/: what gets deployed is locked down, and the samples
match it.

The deployed shape is checked on SAM's own transform of the template (run with the pinned SAM
CLI's Python), then resolved for the parameter values that change it: AWS_IAM or JWT, a Bedrock
model or a third-party one with its key in Secrets Manager, with or without CORS and a KMS key.
"""

import inspect
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from cfnlint.api import lint
from cfnlint.decode import decode_str

from agent.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
FUNCTION = "AgentFunction"

ROUTES = {
    ("POST", "/sessions/{session_id}/messages"),
    ("GET", "/sessions/{session_id}/messages"),
    ("DELETE", "/sessions/{session_id}"),
}
# Everything the handler reads (agent.Settings) plus what the libraries read.
FUNCTION_VARIABLES = {
    "MODEL_ID", "MODEL_API_BASE", "MODEL_API_KEY", "MODEL_API_KEY_SECRET_ARN", "MODEL_PARAMS", "SYSTEM_PROMPT",
    "SESSION_BUCKET", "SESSION_PREFIX", "SESSION_DIR", "HISTORY_WINDOW", "MAX_MESSAGE_CHARS",
    "SESSION_LEASE_SECONDS", "SESSION_TTL_DAYS", "IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL_SECONDS",
    "LITELLM_LOCAL_MODEL_COST_MAP", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL",
}
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-api-key-AbCdEf"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
# The other side of every switch in the template.
ALTERNATIVE = {
    "AuthMode": "JWT", "JwtIssuer": ISSUER, "JwtAudience": "web-client,cli-client",
    "CorsAllowOrigins": "https://app.example.com", "ModelId": "nebius/deepseek-ai/DeepSeek-V3-0324",
    "ModelApiKeySecretArn": SECRET_ARN, "SessionsKmsKeyArn": KEY_ARN, "Architecture": "x86_64",
    "FunctionTimeout": "60", "EnableAccessLogs": "false",
}


# ---- the SAM CLI, run once per module ---------------------------------------------------


def sam_command() -> list[str]:
    """The pinned SAM CLI's environment: used directly when synced, else through uv (which syncs it)."""
    venv = ROOT / "tools" / "sam" / ".venv" / "bin"
    if (venv / "sam").exists():
        return [str(venv / "python")]
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("neither tools/sam/.venv nor uv is available to run the pinned SAM CLI (run `make setup`)")
    return [uv, "run", "--frozen", "--project", str(ROOT / "tools" / "sam"), "python"]


class SamCli:
    """`sam validate --lint`, the SAM transform and `sam local generate-event`, started together."""

    def __init__(self) -> None:
        python = sam_command()
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("AWS_PROFILE", None)
        sam = [*python, "-m", "samcli"]

        def start(*args: str) -> subprocess.Popen:
            return subprocess.Popen(args, cwd=ROOT, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        self._processes = {
            "validate": start(*sam, "validate", "--lint", "--template", str(TEMPLATE)),
            "transform": start(*python, str(Path(__file__).with_name("sam_transform.py")), str(TEMPLATE)),
            "event": start(*sam, "local", "generate-event", "apigateway", "http-api-proxy"),
        }
        self._results: dict[str, tuple[int, str, str]] = {}

    def result(self, name: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of one command, waiting for it the first time."""
        if name not in self._results:
            process = self._processes[name]
            stdout, stderr = process.communicate(timeout=300)
            self._results[name] = (process.returncode, stdout, stderr)
        return self._results[name]

    def json(self, name: str) -> Any:
        code, stdout, stderr = self.result(name)
        assert code == 0, stdout + stderr
        return json.loads(stdout)


@pytest.fixture(scope="module")
def sam() -> SamCli:
    return SamCli()


@pytest.fixture(scope="module")
def transformed(sam: SamCli) -> dict:
    return sam.json("transform")


@pytest.fixture(scope="module")
def template() -> dict:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return decoded


# ---- the template for one set of parameter values -----------------------------------------

NO_VALUE = object()


class Stack:
    """The template as CloudFormation evaluates it for given parameter values: conditions decided,
    Fn::If branches taken, AWS::NoValue removed, parameters substituted. What exists only once
    deployed (resource Refs, Fn::GetAtt, Fn::Sub) is left as written."""

    def __init__(self, template: dict, **values: str) -> None:
        self.template = template
        self.parameters = {
            name: self._parameter(spec, values.get(name, spec.get("Default")))
            for name, spec in template["Parameters"].items()
        }
        self.conditions = {name: self.evaluate(expression)
                           for name, expression in template.get("Conditions", {}).items()}
        self.resources = {
            name: self.evaluate(resource) for name, resource in template["Resources"].items()
            if self.conditions.get(resource.get("Condition"), True)
        }

    @staticmethod
    def _parameter(spec: dict, value: Any) -> Any:
        value = "" if value is None else str(value)
        return value.split(",") if spec["Type"] == "CommaDelimitedList" else value

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(self.evaluate, node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, argument), = node.items()
            if function == "Ref" or function == "Condition" or function.startswith("Fn::"):
                return self._intrinsic(function, argument, node)
        evaluated = {key: self.evaluate(value) for key, value in node.items()}
        return {key: value for key, value in evaluated.items() if value is not NO_VALUE}

    def _intrinsic(self, function: str, argument: Any, node: dict) -> Any:
        if function == "Ref":
            return NO_VALUE if argument == "AWS::NoValue" else self.parameters.get(argument, node)
        if function == "Condition":
            return self.conditions[argument]
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.evaluate(when_true if self.conditions[name] else when_false)
        if function in ("Fn::Sub", "Fn::GetAtt"):
            return node
        values = self.evaluate(argument)
        operations = {
            "Fn::Equals": lambda: values[0] == values[1],
            "Fn::Not": lambda: not values[0],
            "Fn::And": lambda: all(values),
            "Fn::Or": lambda: any(values),
            "Fn::Select": lambda: values[1][int(values[0])],
            "Fn::Split": lambda: values[1].split(values[0]),
            "Fn::Join": lambda: values[0].join(values[1]),
            "Fn::FindInMap": lambda: self.template["Mappings"][values[0]][str(values[1])][values[2]],
        }
        if function not in operations:
            raise NotImplementedError(f"{function} is not evaluated by this test; add it")
        return operations[function]()

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}


@pytest.fixture(scope="module")
def alias(template: dict) -> str:
    """The logical ID SAM gives the alias that AutoPublishAlias creates (what SnapStart applies to)."""
    return f"{FUNCTION}Alias{template['Resources'][FUNCTION]['Properties']['AutoPublishAlias']}"


@pytest.fixture(scope="module")
def defaults(transformed: dict) -> Stack:
    return Stack(transformed)


@pytest.fixture(scope="module")
def alternative(transformed: dict) -> Stack:
    return Stack(transformed, **ALTERNATIVE)


def environment(stack: Stack) -> dict[str, str]:
    """The function's environment once deployed; resource references become plausible names."""
    variables = stack.resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    return {name: str(value) if isinstance(value, (str, int)) else f"stack-{name.lower()}-1a2b3c"
            for name, value in variables.items()}


def statements(stack: Stack) -> list[dict]:
    role = stack.resources[f"{FUNCTION}Role"]["Properties"]
    return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# ---- linters ------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing(sam: SamCli) -> None:
    assert [str(match) for match in lint(TEMPLATE.read_text())] == []


def test_sam_validate_lint_is_clean(sam: SamCli) -> None:
    code, stdout, stderr = sam.result("validate")
    output = stdout + stderr
    assert code == 0, output
    assert "is a valid SAM Template" in output
    assert not re.search(r"\b[EWI]\d{4}\b", output), output


# ---- the API ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["IAM", "JWT"])
def test_every_route_needs_a_signed_in_caller_and_reaches_the_alias(transformed: dict, alias: str, mode: str) -> None:
    stack = Stack(transformed, **(ALTERNATIVE if mode == "JWT" else {}))
    body = stack.resources["AgentApi"]["Properties"]["Body"]
    operations = {(method.upper(), path): op for path, item in body["paths"].items() for method, op in item.items()}
    scheme = "JwtAuthorizer" if mode == "JWT" else "AWS_IAM"

    assert set(operations) == ROUTES
    for route, operation in operations.items():
        assert operation["security"] == [{scheme: []}], route
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0"
        assert f"${{{alias}}}" in integration["uri"]["Fn::Sub"], "routes must invoke the alias"
    assert list(body["components"]["securitySchemes"]) == [scheme]
    assert not stack.of_type("AWS::ApiGatewayV2::Route"), "every route must come from the secured body"


def test_iam_and_jwt_schemes_are_the_ones_api_gateway_knows(defaults: Stack, alternative: Stack) -> None:
    iam = defaults.resources["AgentApi"]["Properties"]["Body"]["components"]["securitySchemes"]["AWS_IAM"]
    jwt = alternative.resources["AgentApi"]["Properties"]["Body"]["components"]["securitySchemes"]["JwtAuthorizer"]

    assert iam["x-amazon-apigateway-authtype"] == "awsSigv4"
    authorizer = jwt["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {"issuer": ISSUER, "audience": ["web-client", "cli-client"]}


def test_jwt_mode_refuses_to_deploy_without_issuer_and_audience(template: dict) -> None:
    rule = template["Rules"]["JwtNeedsIssuerAndAudience"]
    checked = json.dumps(rule["Assertions"])
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert "JwtIssuer" in checked and "JwtAudience" in checked


def test_cors_only_for_the_listed_origins(defaults: Stack, alternative: Stack) -> None:
    assert "x-amazon-apigateway-cors" not in defaults.resources["AgentApi"]["Properties"]["Body"]

    cors = alternative.resources["AgentApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://app.example.com"]
    assert {"authorization", "content-type", "idempotency-key"} <= set(cors["allowHeaders"])
    assert {"GET", "POST", "DELETE"} <= set(cors["allowMethods"])


def test_access_logs_can_be_switched_off(defaults: Stack, alternative: Stack) -> None:
    stage = "AgentApiApiGatewayDefaultStage"
    assert "AccessLogSettings" in defaults.resources[stage]["Properties"]
    assert "ApiAccessLogGroup" in defaults.resources
    assert "AccessLogSettings" not in alternative.resources[stage]["Properties"]
    assert "ApiAccessLogGroup" not in alternative.resources


# ---- the function ------------------------------------------------------------------------


def test_function_runtime_architecture_and_tracing(defaults: Stack, alternative: Stack) -> None:
    function = defaults.resources[FUNCTION]["Properties"]

    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert alternative.resources[FUNCTION]["Properties"]["Architectures"] == ["x86_64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert int(function["Timeout"]) < 30, "API Gateway cuts HTTP API integrations at 30 s"


def test_environment_has_every_setting_and_the_offline_price_map(defaults: Stack) -> None:
    env = environment(defaults)

    assert FUNCTION_VARIABLES <= set(env)
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert defaults.resources[FUNCTION]["Properties"]["Environment"]["Variables"]["SESSION_BUCKET"] == {
        "Ref": "SessionsBucket"}
    assert defaults.resources[FUNCTION]["Properties"]["Environment"]["Variables"]["IDEMPOTENCY_TABLE"] == {
        "Ref": "IdempotencyTable"}


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_deployed_environment_is_valid_settings(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    settings = Settings.from_env(environment(stack))
    timeout = int(stack.resources[FUNCTION]["Properties"]["Timeout"])

    assert settings.model_id == stack.parameters["ModelId"]
    assert settings.session_bucket and settings.idempotency_table
    assert settings.model_api_key is None, "a deployed key lives in Secrets Manager, never in the environment"
    assert settings.lease_seconds > timeout, "a turn must never outlive its session lease"
    assert settings.model_params == {"max_tokens": 1024}


def test_session_lease_outlives_every_allowed_timeout(template: dict) -> None:
    timeouts = template["Parameters"]["FunctionTimeout"]["AllowedValues"]
    lease = template["Mappings"]["LeaseSeconds"]

    assert set(lease) == {str(t) for t in timeouts}
    for timeout in timeouts:
        assert timeout < lease[str(timeout)]["Value"] <= timeout + 60


def test_default_model_is_bedrock_so_a_first_deploy_needs_no_key(template: dict) -> None:
    assert template["Parameters"]["ModelId"]["Default"].startswith("bedrock/")


# ---- least privilege ---------------------------------------------------------------------


def test_role_has_only_the_basic_managed_policies(defaults: Stack) -> None:
    managed = defaults.resources[f"{FUNCTION}Role"]["Properties"]["ManagedPolicyArns"]
    names = sorted(json.dumps(arn).rsplit("/", 1)[-1].strip('"}') for arn in managed)
    assert names == ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"]


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_no_wildcard_actions_and_no_wildcard_resources(transformed: dict, values: dict) -> None:
    for statement in statements(Stack(transformed, **values)):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
        for resource in as_list(statement["Resource"]):
            assert resource != "*", statement


def test_s3_only_this_bucket_its_prefix_and_the_operations_used(defaults: Stack) -> None:
    s3 = [s for s in statements(defaults) if as_list(s["Action"])[0].startswith("s3:")]
    by_action = {action: s for s in s3 for action in as_list(s["Action"])}

    assert set(by_action) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
    assert by_action["s3:GetObject"]["Resource"] == {"Fn::Sub": "${SessionsBucket.Arn}/${SessionPrefix}/*"}
    assert by_action["s3:ListBucket"]["Resource"] == {"Fn::GetAtt": ["SessionsBucket", "Arn"]}


def test_dynamodb_only_the_idempotency_records(defaults: Stack) -> None:
    dynamodb = [s for s in statements(defaults) if as_list(s["Action"])[0].startswith("dynamodb:")]

    assert len(dynamodb) == 1
    assert set(dynamodb[0]["Action"]) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert dynamodb[0]["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}


def services(stack: Stack) -> dict[str, dict]:
    return {as_list(s["Action"])[0].split(":")[0]: s for s in statements(stack)}


def test_bedrock_model_gets_bedrock_and_no_secret(defaults: Stack) -> None:
    granted = services(defaults)

    assert set(granted) == {"s3", "dynamodb", "bedrock"}
    assert set(granted["bedrock"]["Action"]) == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
    for resource in granted["bedrock"]["Resource"]:
        assert re.search(r":(foundation-model|inference-profile|application-inference-profile)/\*$",
                         resource["Fn::Sub"]), resource


def test_third_party_model_gets_its_secret_and_no_bedrock(alternative: Stack) -> None:
    granted = services(alternative)

    assert set(granted) == {"s3", "dynamodb", "secretsmanager", "kms"}
    assert granted["secretsmanager"]["Action"] == "secretsmanager:GetSecretValue"
    assert granted["secretsmanager"]["Resource"] == SECRET_ARN
    assert granted["kms"]["Resource"] == KEY_ARN


@pytest.mark.parametrize("model_id, bedrock", [
    ("bedrock/us.amazon.nova-2-lite-v1:0", True),
    ("bedrock/converse/us.anthropic.claude-haiku-4-5-20251001-v1:0", True),
    ("bedrock/amazon.nova-lite-v1:0", True),
    ("openai/gpt-4o-mini", False),
    ("nebius/deepseek-ai/DeepSeek-V3-0324", False),
    ("bedrockish/model", False),
    ("gpt-4o", False),
])
def test_bedrock_permission_follows_the_model_provider(transformed: dict, model_id: str, bedrock: bool) -> None:
    assert Stack(transformed, ModelId=model_id).conditions["IsBedrockModel"] is bedrock


# ---- stored data ---------------------------------------------------------------------------


def test_sessions_bucket_is_private_encrypted_and_versioned(defaults: Stack, alternative: Stack) -> None:
    bucket = defaults.resources["SessionsBucket"]
    properties = bucket["Properties"]

    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"
    default_sse = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert default_sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    kms_sse = alternative.resources["SessionsBucket"]["Properties"]["BucketEncryption"]
    assert kms_sse["ServerSideEncryptionConfiguration"][0] == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
        "BucketKeyEnabled": True}


def test_lifecycle_never_expires_current_objects(defaults: Stack) -> None:
    """A lifecycle expiry would age each message on its own and cut holes in live sessions."""
    rules = defaults.resources["SessionsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]

    for rule in rules:
        assert not {"ExpirationInDays", "ExpirationDate", "Transitions"} & set(rule), rule
    assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == "7" for rule in rules)
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)


def test_bucket_refuses_requests_without_tls(defaults: Stack) -> None:
    policy = defaults.resources["SessionsBucketPolicy"]["Properties"]["PolicyDocument"]
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]

    assert deny == [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["SessionsBucket", "Arn"]}, {"Fn::Sub": "${SessionsBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]


def test_idempotency_table_has_the_powertools_layout(defaults: Stack) -> None:
    table = defaults.resources["IdempotencyTable"]["Properties"]
    layer = inspect.signature(DynamoDBPersistenceLayer).parameters

    assert table["KeySchema"] == [{"AttributeName": layer["key_attr"].default, "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": layer["key_attr"].default, "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": layer["expiry_attr"].default, "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_schedule_runs_the_sweep_with_the_sample_event(defaults: Stack, alias: str) -> None:
    rules = defaults.of_type("AWS::Events::Rule")
    (rule,) = rules.values()
    (target,) = rule["Properties"]["Targets"]

    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert json.loads(target["Input"]) == json.loads((EVENTS / "expire_idle_sessions.json").read_text())
    assert target["Arn"] == {"Ref": alias}


def test_outputs_name_the_api_bucket_and_function(template: dict) -> None:
    assert {"ApiUrl", "SessionsBucketName", "AgentFunctionArn", "AgentFunctionAliasArn"} <= set(template["Outputs"])


# ---- samconfig.toml and events/env.json ------------------------------------------------------


def test_samconfig_deploys_the_stack_after_one_guided_deploy(template: dict) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    default = config["default"]
    deploy = default["deploy"]["parameters"]
    # in global, so that sam build (which builds for the Architecture) and sam deploy agree
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', default["global"]["parameters"]["parameter_overrides"]))

    assert config["version"] == 0.1
    assert default["global"]["parameters"]["stack_name"] == "stateful-agent"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    assert set(overrides) <= set(template["Parameters"]) and "Architecture" in overrides
    assert "parameter_overrides" not in deploy, "deploy would ignore the global overrides sam build uses"
    # not cached: SAM hashes only the code folder, so a uv.lock change would ship stale wheels
    assert default["build"]["parameters"] == {"cached": False, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True
    for command in ("local_invoke", "local_start_api"):
        assert default[command]["parameters"]["env_vars"] == "events/env.json"


def test_env_json_sets_only_variables_the_template_declares(template: dict) -> None:
    """sam local applies env.json only to variables the template declares; others are dropped silently."""
    env_json = json.loads((EVENTS / "env.json").read_text())
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}

    assert set(env_json) == functions
    for name, variables in env_json.items():
        declared = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert set(variables) <= set(declared)
        assert all(isinstance(value, str) for value in variables.values())


def test_env_json_runs_locally_on_files_and_a_local_model(defaults: Stack) -> None:
    local = json.loads((EVENTS / "env.json").read_text())[FUNCTION]
    settings = Settings.from_env({**environment(defaults), **local})

    assert settings.session_bucket is None and settings.idempotency_table is None
    assert settings.session_dir.startswith("/tmp/"), "Lambda's code directory is read-only"
    assert settings.model_id.startswith("openai/") and "host.docker.internal" in settings.model_api_base


# ---- events/ -------------------------------------------------------------------------------

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


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
def test_http_events_have_the_shape_api_gateway_sends(sam: SamCli, name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    generated = sam.json("event")
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


def test_other_sources_carry_a_direct_invocation_object() -> None:
    direct = json.loads((EVENTS / "direct_invoke.json").read_text())
    eventbridge = json.loads((EVENTS / "eventbridge_message.json").read_text())
    (record,) = json.loads((EVENTS / "sqs_message.json").read_text())["Records"]

    for payload in (direct, eventbridge["detail"], json.loads(record["body"])):
        assert set(payload) == {"session_id", "message"}
    assert {"detail-type", "detail", "source", "id"} <= set(eventbridge)
    assert record["eventSource"] == "aws:sqs"
    assert json.loads((EVENTS / "expire_idle_sessions.json").read_text()) == {"action": "expire_idle_sessions"}


def test_local_twin_serves_the_template_routes() -> None:
    from dev_server import ROUTES as TWIN_ROUTES  # tools/ is on the path (tests/conftest.py)

    assert set(TWIN_ROUTES) == ROUTES


# ---- the role against what the function really calls ------------------------------------------

# The IAM action each AWS API operation needs (AWS Service Authorization Reference). An operation
# missing here fails the test: add it, and grant it in template.yaml if the function needs it.
IAM_ACTION = {
    ("s3", "GetObject"): "s3:GetObject",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "PutObject"): "s3:PutObject",
    ("s3", "DeleteObject"): "s3:DeleteObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("dynamodb", "GetItem"): "dynamodb:GetItem",
    ("dynamodb", "PutItem"): "dynamodb:PutItem",
    ("dynamodb", "UpdateItem"): "dynamodb:UpdateItem",
    ("dynamodb", "DeleteItem"): "dynamodb:DeleteItem",
    ("secretsmanager", "GetSecretValue"): "secretsmanager:GetSecretValue",
}


@pytest.fixture
def deployed_like(model_env, session_dir, s3_bucket, moto_server, monkeypatch) -> dict[str, str]:
    """The handler's AWS resources as the stack makes them (bucket, idempotency table, key secret),
    on the moto server; the model key comes from the secret, as when deployed."""
    import boto3

    from tests.conftest import BUCKET

    endpoint = moto_server.endpoint_url
    table = f"idempotency-{os.getpid()}"
    boto3.client("dynamodb", endpoint_url=endpoint).create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    secret = boto3.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name=f"model-key-{os.getpid()}", SecretString="sk-from-secrets-manager")["ARN"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", table)
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", secret)
    monkeypatch.delenv("MODEL_API_KEY")
    yield {"bucket": BUCKET, "table": table, "secret": secret}
    boto3.client("dynamodb", endpoint_url=endpoint).delete_table(TableName=table)
    boto3.client("secretsmanager", endpoint_url=endpoint).delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)


def test_the_function_calls_only_what_its_role_grants(transformed: dict, deployed_like: dict, monkeypatch) -> None:
    from botocore.client import BaseClient

    from tests.conftest import Api, load_handler

    calls: list[tuple[str, str, dict]] = []
    make_api_call = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: dict) -> Any:
        calls.append((client.meta.service_model.service_name, operation, params))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    api = Api(load_handler())
    assert api.post("user_arindam_convo_123", "Hey, my name is Arindam.",
                    headers={"Idempotency-Key": "turn-1"})[0] == 200
    assert api.post("user_arindam_convo_123", "Do you remember my name?")[0] == 200
    assert api.history("user_arindam_convo_123")[0] == 200
    assert "expired_sessions" in api.invoke(json.loads((EVENTS / "expire_idle_sessions.json").read_text()))
    assert api.delete("user_arindam_convo_123")[0] == 204

    stack = Stack(transformed, ModelId="openai/test-model", ModelApiKeySecretArn=deployed_like["secret"])
    granted = {action for statement in statements(stack) for action in as_list(statement["Action"])}
    used = {(service, operation) for service, operation, _ in calls}
    unknown = used - set(IAM_ACTION)
    assert not unknown, f"add these operations to IAM_ACTION (and to the role if needed): {unknown}"
    assert {IAM_ACTION[call] for call in used} <= granted
    prefix = stack.parameters["SessionPrefix"] + "/"
    for service, operation, params in calls:
        if service == "s3":
            assert params["Bucket"] == deployed_like["bucket"]
            keys = [params["Key"]] if "Key" in params else [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
            assert all(key.startswith(prefix) for key in keys), (operation, keys)
            assert params.get("Prefix", prefix).startswith(prefix), (operation, params)
        elif service == "dynamodb":
            assert params["TableName"] == deployed_like["table"]
