"""Least privilege: what each function's role allows, on what, and nothing more.

docs/security.md describes the same grants in words; these tests are what holds them.
"""

import json

import pytest

from tests.template.stack import (
    AGENT,
    ALTERNATIVE,
    AUTHORIZER,
    CONVERSATION_FUNCTIONS,
    KEY_ARN,
    SECRET_ARN,
    WORKER,
    Stack,
    as_list,
    granted,
    role_policies,
    select,
    statements,
)

BASIC = ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
         "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"]
OBJECTS = {"Fn::Sub": "${SessionsBucket.Arn}/sessions/*"}
BUCKET = {"Fn::GetAtt": ["SessionsBucket", "Arn"]}
CONNECTIONS = {"Fn::Sub": "arn:aws:execute-api:us-east-1:123456789012:${WebSocketApi}/prod/POST/@connections/*"}
TURN_QUEUE = {"Fn::GetAtt": ["TurnQueue", "Arn"]}
DEAD_LETTERS = {"Fn::GetAtt": ["TurnDeadLetterQueue", "Arn"]}
FAILURES_QUEUE = {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}
# What every role may do with the default parameters (a Bedrock model, no KMS key, no secret).
EXPECTED: dict[str, dict[str, list]] = {
    AGENT: {
        "s3:GetObject": [OBJECTS], "s3:PutObject": [OBJECTS], "s3:DeleteObject": [OBJECTS],
        "s3:PutObjectTagging": [OBJECTS], "s3:ListBucket": [BUCKET],
        "execute-api:ManageConnections": [CONNECTIONS],
        # queues turns; sends failed async invocations on (EventInvokeConfig's OnFailure, added by SAM)
        "sqs:SendMessage": [TURN_QUEUE, FAILURES_QUEUE],
    },
    WORKER: {
        "s3:GetObject": [OBJECTS], "s3:PutObject": [OBJECTS], "s3:DeleteObject": [OBJECTS],
        "s3:PutObjectTagging": [OBJECTS], "s3:ListBucket": [BUCKET],
        "execute-api:ManageConnections": [CONNECTIONS],
        # its turns, and the dead-lettered ones it finalises
        "sqs:ReceiveMessage": [DEAD_LETTERS, TURN_QUEUE], "sqs:DeleteMessage": [DEAD_LETTERS, TURN_QUEUE],
        "sqs:GetQueueAttributes": [DEAD_LETTERS, TURN_QUEUE],
    },
    AUTHORIZER: {},
}
BEDROCK_ACTIONS = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}


def without_bedrock(grants: dict[str, list]) -> dict[str, list]:
    return {action: unordered(resources) for action, resources in grants.items() if not action.startswith("bedrock:")}


def unordered(resources: list) -> list:
    return sorted(resources, key=json.dumps)


def test_each_function_may_do_exactly_this(defaults: Stack, alternative: Stack) -> None:
    for function in (AGENT, WORKER):
        expected = {action: unordered(resources) for action, resources in EXPECTED[function].items()}
        assert without_bedrock(granted(defaults, function)) == expected, function
    assert granted(alternative, AUTHORIZER) == EXPECTED[AUTHORIZER], "the authorizer calls no AWS service"


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_roles_have_only_the_basic_managed_policies_and_the_stacks_own(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    for function in (AGENT, WORKER, AUTHORIZER):
        if function not in stack.resources:
            continue
        managed, _ = role_policies(stack, function)
        own = [arn for arn in managed if isinstance(arn, dict)]
        assert [arn for arn in managed if isinstance(arn, str)] == BASIC, function
        assert own == ([{"Ref": "ConversationPolicy"}] if function in CONVERSATION_FUNCTIONS else []), function


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_no_wildcard_actions_and_no_wildcard_resources(transformed: dict, values: dict) -> None:
    stack = Stack(transformed, **values)
    documents = [r["Properties"]["PolicyDocument"] for r in stack.of_type("AWS::IAM::ManagedPolicy").values()]
    documents += [p["PolicyDocument"] for r in stack.of_type("AWS::IAM::Role").values()
                  for p in r["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in as_list(document["Statement"]):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, statement
            for resource in as_list(statement["Resource"]):
                assert resource != "*", statement


def test_the_conversation_functions_share_their_data_access(defaults: Stack, alternative: Stack) -> None:
    """Sessions, records, model and connections: one managed policy, attached to both."""
    for stack in (defaults, alternative):
        shared = stack.properties("ConversationPolicy")["PolicyDocument"]["Statement"]
        for function in CONVERSATION_FUNCTIONS:
            assert all(s in statements(stack, function) for s in shared)


def test_records_are_tagged_under_the_session_prefix_only(transformed: dict) -> None:
    stack = Stack(transformed, SessionPrefix="tenant-a/sessions")
    tagging = granted(stack, WORKER)["s3:PutObjectTagging"]
    assert tagging == [{"Fn::Sub": "${SessionsBucket.Arn}/tenant-a/sessions/*"}]
    assert granted(stack, WORKER)["s3:GetObject"] == tagging


def test_websocket_frames_only_to_this_apis_connections(defaults: Stack) -> None:
    """POST only: the functions never close a connection nor read its details."""
    stage = defaults.properties("WebSocketStage")["StageName"]
    for function in CONVERSATION_FUNCTIONS:
        assert granted(defaults, function)["execute-api:ManageConnections"] == [
            {"Fn::Sub": f"arn:aws:execute-api:us-east-1:123456789012:${{WebSocketApi}}/{stage}/POST/@connections/*"}]


def test_only_the_agent_function_queues_turns_and_only_the_worker_takes_them(defaults: Stack) -> None:
    agent, worker = granted(defaults, AGENT), granted(defaults, WORKER)

    assert TURN_QUEUE in agent["sqs:SendMessage"] and "sqs:SendMessage" not in worker
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & set(agent)


def test_kms_and_the_model_secret_only_when_configured(defaults: Stack, alternative: Stack) -> None:
    for function in CONVERSATION_FUNCTIONS:
        secrets = {"kms:Decrypt", "kms:GenerateDataKey", "secretsmanager:GetSecretValue"}
        assert not secrets & set(granted(defaults, function))
        grants = granted(alternative, function)
        assert grants["kms:Decrypt"] == grants["kms:GenerateDataKey"] == [KEY_ARN]
        assert grants["secretsmanager:GetSecretValue"] == [SECRET_ARN]
        assert not BEDROCK_ACTIONS & set(grants), "a third-party model gets no Bedrock statement"


# ---- Bedrock: the configured model, and nothing else ---------------------------------------------


def bedrock_statements(stack: Stack) -> dict[str, dict]:
    found = {s["Sid"]: s for s in statements(stack, WORKER) if BEDROCK_ACTIONS & set(as_list(s["Action"]))}
    assert found == {s["Sid"]: s for s in statements(stack, AGENT) if BEDROCK_ACTIONS & set(as_list(s["Action"]))}
    return found


@pytest.mark.parametrize("model_id, profile, foundation_model", [
    ("bedrock/us.amazon.nova-2-lite-v1:0", "us.amazon.nova-2-lite-v1:0", "amazon.nova-2-lite-v1:0"),
    ("bedrock/converse/us.anthropic.claude-haiku-4-5-20251001-v1:0",
     "us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("bedrock/invoke/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
     "eu.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
])
def test_a_cross_region_profile_and_its_models_through_that_profile_only(
        transformed: dict, model_id: str, profile: str, foundation_model: str) -> None:
    found = bedrock_statements(Stack(transformed, ModelId=model_id))
    profile_arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile}"

    assert set(found) == {"BedrockModel", "BedrockProfileRoutes"}
    assert set(found["BedrockModel"]["Action"]) == BEDROCK_ACTIONS
    assert as_list(found["BedrockModel"]["Resource"]) == [profile_arn]
    assert "Condition" not in found["BedrockModel"]
    routes = found["BedrockProfileRoutes"]
    assert set(routes["Action"]) == BEDROCK_ACTIONS
    # any region the profile routes to; global. profiles name no region at all
    assert routes["Resource"] == [f"arn:aws:bedrock:*::foundation-model/{foundation_model}",
                                  f"arn:aws:bedrock:::foundation-model/{foundation_model}"]
    assert routes["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}


@pytest.mark.parametrize("model_id, foundation_model", [
    ("bedrock/amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ("bedrock/converse/anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
])
def test_a_plain_foundation_model_in_this_region(transformed: dict, model_id: str, foundation_model: str) -> None:
    found = bedrock_statements(Stack(transformed, ModelId=model_id))

    assert set(found) == {"BedrockModel"}
    assert as_list(found["BedrockModel"]["Resource"]) == [
        f"arn:aws:bedrock:us-east-1::foundation-model/{foundation_model}"]


@pytest.mark.parametrize("model_id", ["openai/gpt-4o-mini", "nebius/deepseek-ai/DeepSeek-V3-0324", "bedrockish/model",
                                      "gpt-4o", "openai/us.model.v1"])
def test_other_providers_get_no_bedrock_statement(transformed: dict, model_id: str) -> None:
    stack = Stack(transformed, ModelId=model_id)
    assert not bedrock_statements(stack)
    assert not stack.conditions["IsBedrockModel"] and not stack.conditions["IsBedrockInferenceProfile"]


# Odd values a parameter can hold: none may make a Fn::Select run past the end of its list, in a
# branch that is taken or one that is not (CloudFormation evaluates both before picking).
ODD_MODEL_IDS = ["bedrock", "bedrock/", "bedrock//", "bedrock/converse", "bedrock/converse/", "bedrock/invoke",
                 "x", "/", ".", "a.b", "bedrock/a.b.c.d", "bedrock/converse/x/y", ""]


@pytest.mark.parametrize("model_id", ODD_MODEL_IDS)
def test_no_fn_select_is_out_of_range_in_any_branch(template: dict, model_id: str) -> None:
    stack = Stack({**template, "Resources": {}, "Outputs": {}}, ModelId=model_id)
    selects: list = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"Fn::Select"}:
                selects.append(node["Fn::Select"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(template)
    assert len(selects) >= 5
    for index, values in selects:
        select(int(index), stack.evaluate(values))  # raises IndexError when out of range
