"""Stored data: the sessions bucket (conversations and idempotency records) and the queues."""

import pytest

from tests.template.stack import ALTERNATIVE, KEY_ARN, Stack

SQS_QUEUES = {"TurnQueue", "TurnDeadLetterQueue", "AsyncFailuresQueue"}


# ---- the sessions bucket ------------------------------------------------------------------------


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
    kms_sse = alternative.properties("SessionsBucket")["BucketEncryption"]
    assert kms_sse["ServerSideEncryptionConfiguration"][0] == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
        "BucketKeyEnabled": True}


EXPIRATION = {"ExpirationInDays", "ExpirationDate", "Transitions"}


@pytest.mark.parametrize("values", [{}, ALTERNATIVE, {"SessionPrefix": "tenant-a/sessions", "RecordExpiryDays": "3"}],
                         ids=["defaults", "alternative", "prefix"])
def test_lifecycle_expires_current_objects_only_when_tagged_kind_record(transformed: dict, values: dict) -> None:
    """A lifecycle expiry would age each message on its own and cut holes in live sessions; only
    idempotency records (kind=record), never part of a conversation, may expire that way."""
    stack = Stack(transformed, **values)
    rules = stack.properties("SessionsBucket")["LifecycleConfiguration"]["Rules"]
    expiring = [rule for rule in rules if EXPIRATION & set(rule) and rule["Id"] != "ExpireUsageCounts"]
    (usage,) = [rule for rule in rules if rule["Id"] == "ExpireUsageCounts"]  # token counts, no conversation

    assert usage["Prefix"] == stack.parameters["SessionPrefix"] + "/.usage/" and usage["Status"] == "Enabled"
    assert len(expiring) == 1
    (records,) = expiring
    assert set(records) & EXPIRATION == {"ExpirationInDays"}
    assert records["TagFilters"] == [{"Key": "kind", "Value": "record"}]
    assert records["Prefix"] == stack.parameters["SessionPrefix"] + "/"
    assert records["ExpirationInDays"] == stack.parameters["RecordExpiryDays"]
    assert records["Status"] == "Enabled"
    assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == "7" for rule in rules)
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)
    assert any(rule.get("ExpiredObjectDeleteMarker") for rule in rules)


def test_a_record_never_expires_from_s3_before_its_ttl(template: dict) -> None:
    parameters = template["Parameters"]
    assert parameters["RecordExpiryDays"]["Default"] == 1
    assert parameters["IdempotencyTtlSeconds"]["MaxValue"] <= parameters["RecordExpiryDays"]["MinValue"] * 86400


def test_bucket_refuses_requests_without_tls(defaults: Stack) -> None:
    policy = defaults.properties("SessionsBucketPolicy")["PolicyDocument"]
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]

    assert deny == [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["SessionsBucket", "Arn"]}, {"Fn::Sub": "${SessionsBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]


# ---- queues ----------------------------------------------------------------------------------------


def test_every_queue_is_encrypted_by_sqs(defaults: Stack, alternative: Stack) -> None:
    """SQS-managed keys even with SessionsKmsKeyArn: EventBridge dead-lettering and Lambda
    destinations write to them without key grants, and turns stay in the queue for seconds."""
    for stack in (defaults, alternative):
        queues = stack.of_type("AWS::SQS::Queue")
        assert set(queues) == SQS_QUEUES
        for name, queue in queues.items():
            assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
            assert "KmsMasterKeyId" not in queue["Properties"], name


def test_turn_queue_keeps_each_sessions_turns_in_order(defaults: Stack) -> None:
    queue = defaults.properties("TurnQueue")

    assert queue["FifoQueue"] is True
    # MessageDeduplicationId = the turn id, set by the code
    assert queue["ContentBasedDeduplication"] is False
    assert queue["DeduplicationScope"] == "messageGroup" and queue["FifoThroughputLimit"] == "perMessageGroupId"
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["TurnDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 3}
    dead_letters = defaults.properties("TurnDeadLetterQueue")
    assert dead_letters["FifoQueue"] is True, "a FIFO queue's dead letters must be FIFO"
    assert dead_letters["MessageRetentionPeriod"] == 1209600


@pytest.mark.parametrize("turn_timeout", [60, 120, 300, 600, 900])
def test_a_killed_worker_holds_its_session_no_longer_than_a_lease(transformed: dict, turn_timeout: int) -> None:
    stack = Stack(transformed, TurnTimeout=str(turn_timeout))
    assert stack.properties("TurnQueue")["VisibilityTimeout"] == turn_timeout + 30


def test_failed_async_work_is_kept_for_two_weeks(defaults: Stack) -> None:
    queue = defaults.properties("AsyncFailuresQueue")
    assert queue["MessageRetentionPeriod"] == 1209600
    assert "FifoQueue" not in queue, "EventBridge and Lambda destinations write to standard queues"


def test_only_the_expiry_schedule_may_dead_letter_into_the_failures_queue(defaults: Stack) -> None:
    policy = defaults.properties("AsyncFailuresQueuePolicy")
    allow, deny = policy["PolicyDocument"]["Statement"]

    assert policy["Queues"] == [{"Ref": "AsyncFailuresQueue"}]
    assert allow == {
        "Sid": "ScheduleDeadLetters", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]},
        "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["AgentFunctionExpireIdleSessions", "Arn"]}}},
    }
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_queue_refuses_requests_without_tls(defaults: Stack) -> None:
    covered = set()
    for policy in defaults.of_type("AWS::SQS::QueuePolicy").values():
        (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                   if s["Effect"] == "Deny" and s["Action"] == "sqs:*"]
        assert deny["Action"] == "sqs:*" and deny["Principal"] == "*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        covered |= {queue["Ref"] for queue in policy["Properties"]["Queues"]}
    assert covered == SQS_QUEUES


def test_only_the_agent_function_sends_turns(defaults: Stack) -> None:
    """The turn queue and its dead-letter queue refuse SendMessage from any other principal."""
    statements = defaults.properties("TurnQueuesPolicy")["PolicyDocument"]["Statement"]
    (senders,) = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert senders["Effect"] == "Deny" and senders["Principal"] == "*"
    assert senders["Resource"] == [{"Fn::GetAtt": ["TurnQueue", "Arn"]}, {"Fn::GetAtt": ["TurnDeadLetterQueue", "Arn"]}]
    assert senders["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["AgentFunctionRole", "Arn"]}}}
    sending = {name for name, role in defaults.of_type("AWS::IAM::Role").items()
               if "sqs:SendMessage" in str(role["Properties"].get("Policies"))}
    assert sending == {"AgentFunctionRole"}, "a role that sends turns must be allowed by TurnQueuesPolicy"
