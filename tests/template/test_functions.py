"""The functions: code, runtime, timeouts, environment, concurrency, triggers, and their build."""

import importlib
import inspect
import json
import re

import pytest

from agent.settings import Settings
from tests.template.stack import (
    AGENT,
    ALTERNATIVE,
    AUTHORIZER,
    CONVERSATION_FUNCTIONS,
    EVENTS,
    ISSUER,
    ROOT,
    WORKER,
    Stack,
    environment,
)

# Everything the conversation code reads (agent.Settings and the handler) plus what the libraries read.
FUNCTION_VARIABLES = {
    "MODEL_ID", "MODEL_API_BASE", "MODEL_API_KEY_SECRET_ARN", "MODEL_API_KEY", "MODEL_PARAMS", "MODEL_TIMEOUT",
    "SYSTEM_PROMPT", "SESSION_BUCKET", "SESSION_PREFIX", "SESSION_DIR", "HISTORY_WINDOW", "HISTORY_POLICY",
    "MEMORY", "MEMORY_MAX_FACTS", "MAX_MESSAGE_CHARS", "SESSION_LEASE_SECONDS", "SESSION_TTL_DAYS",
    "IDEMPOTENCY_TTL_SECONDS", "TURN_QUEUE_URL", "WEBSOCKET_CALLBACK_URL", "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_MODE", "APPROVAL_TOOLS",
    "SYSTEM_PROMPT_FILE", "AGENT_TOOLS", "MCP_SERVERS", "MCP_SECRET_ARNS", "MCP_TOOLS_TTL",
    "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL",
    "CALLER_DAILY_TOKENS", "MAX_OUTPUT_TOKENS",
}
FUNCTIONS = (AGENT, WORKER, AUTHORIZER)


# ---- code and runtime ------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_functions_share_runtime_architecture_and_tracing(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    architecture = values.get("Architecture", "arm64")

    for name in (name for name in FUNCTIONS if name in stack.resources):
        function = stack.properties(name)
        assert function["Runtime"] == "python3.13", name
        assert function["Architectures"] == [architecture], name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert function["LoggingConfig"]["LogGroup"]["Ref"] in stack.of_type("AWS::Logs::LogGroup"), name


def test_one_artifact_built_by_make_for_every_function(template: dict) -> None:
    """sam build runs `make build-<LogicalId>` per function; every such target copies the same artifact."""
    functions = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    makefile = (ROOT / "Makefile").read_text()

    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        assert function["Properties"]["CodeUri"] == "src/"
        assert function["Metadata"] == {"BuildMethod": "makefile",
                                        "ContextPath": {"Fn::Sub": "tools/build/sam/${Architecture}"}}
        for architecture in template["Parameters"]["Architecture"]["AllowedValues"]:
            context = (ROOT / "tools" / "build" / "sam" / architecture / "Makefile").read_text()
            assert re.search(rf"^[^#\n]*\bbuild-{name}\b[^\n]*:", context, re.M), (architecture, name)
            assert f"ARCH={architecture}" in context
        assert re.search(rf"^[^#\n]*\bbuild-{name}\b[^\n]*: sam-artifact", makefile, re.M), name
        assert f"*/{name}" in makefile, f"sam-artifact must accept ARTIFACTS_DIR of {name}"


def test_each_function_names_a_handler_that_can_be_imported(defaults: Stack, alternative: Stack) -> None:
    """What Lambda does at init with the Handler setting: import the module, find the function."""
    for stack, function in ((defaults, AGENT), (defaults, WORKER), (alternative, AUTHORIZER)):
        module, name = stack.properties(function)["Handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module), name)
        assert list(inspect.signature(handler).parameters)[:2] == ["event", "context"], function


def test_the_twin_and_make_invoke_run_the_handler_each_function_names(defaults: Stack) -> None:
    from twin.config import HANDLERS

    in_template = {name: defaults.properties(name)["Handler"] for name in (AGENT, WORKER)}
    assert in_template == HANDLERS


@pytest.mark.parametrize("function", CONVERSATION_FUNCTIONS)
def test_conversation_functions_restore_from_a_snapshot_through_their_alias(defaults: Stack, function: str) -> None:
    assert defaults.properties(function)["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (alias,) = [r for r in defaults.of_type("AWS::Lambda::Alias").values()
                if r["Properties"]["FunctionName"] == {"Ref": function}]
    assert alias["Properties"]["Name"] == "live"


# ---- timeouts and the session lease ----------------------------------------------------------


def test_timeouts(defaults: Stack, alternative: Stack) -> None:
    assert int(defaults.properties(AGENT)["Timeout"]) < 30, "API Gateway cuts HTTP API integrations at 30 s"
    assert defaults.properties(WORKER)["Timeout"] == "300"
    assert alternative.properties(WORKER)["Timeout"] == "900"
    assert int(alternative.properties(AUTHORIZER)["Timeout"]) <= 10


def test_session_lease_outlives_both_functions_for_every_pair_of_timeouts(transformed: dict, template: dict) -> None:
    """One lease for both functions: max(FunctionTimeout, TurnTimeout) + 30, for every allowed pair."""
    function_timeouts = template["Parameters"]["FunctionTimeout"]["AllowedValues"]
    turn_timeouts = template["Parameters"]["TurnTimeout"]["AllowedValues"]
    assert set(template["Mappings"]["LeaseSeconds"]) == {str(t) for t in function_timeouts}

    for function_timeout in function_timeouts:
        assert set(template["Mappings"]["LeaseSeconds"][str(function_timeout)]) == {str(t) for t in turn_timeouts}
        for turn_timeout in turn_timeouts:
            stack = Stack(transformed, FunctionTimeout=str(function_timeout), TurnTimeout=str(turn_timeout))
            leases = {int(environment(stack, name)["SESSION_LEASE_SECONDS"]) for name in CONVERSATION_FUNCTIONS}
            timeouts = [int(stack.properties(name)["Timeout"]) for name in CONVERSATION_FUNCTIONS]
            assert timeouts == [function_timeout, turn_timeout]
            assert leases == {max(timeouts) + 30}, (function_timeout, turn_timeout)


# ---- environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_both_conversation_functions_get_every_setting_and_the_same_values(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    agent, worker = (stack.properties(name)["Environment"]["Variables"] for name in CONVERSATION_FUNCTIONS)

    assert set(agent) == FUNCTION_VARIABLES
    assert agent == worker
    assert agent["SESSION_BUCKET"] == {"Ref": "SessionsBucket"}
    assert agent["TURN_QUEUE_URL"] == {"Ref": "TurnQueue"}
    # frames go to this stack's WebSocket API (its prod stage), whatever a queued turn says
    assert agent["WEBSOCKET_CALLBACK_URL"] == {"Fn::Sub": "https://${WebSocketApi}.execute-api.us-east-1.amazonaws.com/prod"}
    assert stack.properties("WebSocketStage")["StageName"] == "prod"
    assert agent["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert agent["MODEL_API_KEY"] == "", "a deployed key lives in Secrets Manager, never in the environment"


def test_switches_are_spelled_as_the_code_reads_them(template: dict) -> None:
    parameters = template["Parameters"]
    assert parameters["HistoryPolicy"]["AllowedValues"] == ["summarize", "window"]
    assert parameters["Memory"]["AllowedValues"] == ["on", "off"], "quoted in YAML: on/off are not booleans"
    assert parameters["MemoryMaxFacts"]["MinValue"] == 1


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_deployed_environment_is_valid_settings(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    settings = Settings.from_env(environment(stack, WORKER))

    assert settings.model_id == stack.parameters["ModelId"]
    assert settings.session_bucket
    assert settings.model_api_key is None
    assert settings.model_params == {"max_tokens": 1024}


def test_authorizer_reads_the_issuer_and_audiences_and_nothing_of_the_agent(alternative: Stack) -> None:
    env = alternative.properties(AUTHORIZER)["Environment"]["Variables"]

    assert env == {"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": "web-client,cli-client", "JWT_JWKS_URL": "",
                   "LOG_LEVEL": "INFO"}


# ---- concurrency ------------------------------------------------------------------------------------


@pytest.mark.parametrize("parameter, accepted, refused", [
    ("ReservedConcurrency", ["", "1", "25", "3000"], ["0", "-1", "01", "1.5", "x"]),
    ("WorkerReservedConcurrency", ["", "2", "10", "999", "1000"], ["0", "1", "1001", "-1", "02"]),
])
def test_reserved_concurrency_is_none_by_default_and_never_zero_by_accident(
        template: dict, parameter: str, accepted: list, refused: list) -> None:
    spec = template["Parameters"][parameter]
    assert spec["Type"] == "String" and spec["Default"] == ""
    for value in accepted:
        assert re.fullmatch(spec["AllowedPattern"], value), value
    for value in refused:
        assert not re.fullmatch(spec["AllowedPattern"], value), value


def test_reserved_concurrency_applies_per_function(defaults: Stack, alternative: Stack) -> None:
    for name in CONVERSATION_FUNCTIONS:
        assert "ReservedConcurrentExecutions" not in defaults.properties(name)
    assert alternative.properties(AGENT)["ReservedConcurrentExecutions"] == "20"
    assert alternative.properties(WORKER)["ReservedConcurrentExecutions"] == "5"
    # the queue's pollers never exceed the worker's cap (a throttled message counts a receive)
    assert "ScalingConfig" not in defaults.properties("TurnQueueSource")
    assert alternative.properties("TurnQueueSource")["ScalingConfig"] == {"MaximumConcurrency": "5"}


# ---- triggers ----------------------------------------------------------------------------------------


def test_worker_takes_one_turn_at_a_time_from_the_turn_queue(defaults: Stack) -> None:
    source = defaults.properties("TurnQueueSource")

    assert source["EventSourceArn"] == {"Fn::GetAtt": ["TurnQueue", "Arn"]}
    assert source["FunctionName"] == {"Ref": f"{WORKER}Aliaslive"}
    assert source["BatchSize"] == 1
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_async_invocations_are_retried_then_kept(defaults: Stack) -> None:
    (config,) = defaults.of_type("AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]

    assert properties["FunctionName"] == {"Ref": AGENT}
    assert properties["Qualifier"] == "live", "EventBridge invokes the alias"
    assert properties["MaximumRetryAttempts"] == 2
    failures_queue = {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}
    assert properties["DestinationConfig"] == {"OnFailure": {"Destination": failures_queue}}


def test_schedule_runs_the_sweep_with_the_sample_event_and_a_dead_letter_queue(defaults: Stack, alias: str) -> None:
    rules = defaults.of_type("AWS::Events::Rule")
    (rule,) = rules.values()
    (target,) = rule["Properties"]["Targets"]

    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert json.loads(target["Input"]) == json.loads((EVENTS / "expire_idle_sessions.json").read_text())
    assert target["Arn"] == {"Ref": alias}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}}
    assert list(rules) == ["AgentFunctionExpireIdleSessions"], "AsyncFailuresQueuePolicy names this rule"


def test_authorizer_exists_only_with_jwt(defaults: Stack, alternative: Stack) -> None:
    jwt_only = {AUTHORIZER, f"{AUTHORIZER}Role", "WebSocketAuthorizerLogGroup", "WebSocketAuthorizer",
                "WebSocketAuthorizerPermission"}
    assert not jwt_only & set(defaults.resources)
    assert jwt_only <= set(alternative.resources)


def test_every_invoke_permission_names_its_source(defaults: Stack, alternative: Stack) -> None:
    """API Gateway and EventBridge may invoke a function only for this stack's APIs and rule."""
    for stack in (defaults, alternative):
        permissions = stack.of_type("AWS::Lambda::Permission")
        assert permissions
        for name, permission in permissions.items():
            properties = permission["Properties"]
            assert properties["Action"] == "lambda:InvokeFunction", name
            source = json.dumps(properties["SourceArn"])
            assert any(own in source for own in ("AgentApi", "WebSocketApi", "AgentFunctionExpireIdleSessions")), name


def test_every_log_group_keeps_logs_for_log_retention_days(defaults: Stack, alternative: Stack) -> None:
    for stack in (defaults, alternative):
        for name, group in stack.of_type("AWS::Logs::LogGroup").items():
            assert group["Properties"]["RetentionInDays"] == stack.parameters["LogRetentionDays"], name
            assert group["DeletionPolicy"] == "Delete", name
