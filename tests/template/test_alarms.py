"""CloudWatch alarms: errors and throttles of both conversation functions, every dead-letter queue's
depth, the HTTP API's 5xx rate; notifying AlarmTopicArn when it is set."""

import pytest

from tests.template.stack import CONVERSATION_FUNCTIONS, TOPIC_ARN, Stack


def alarms(stack: Stack) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in stack.of_type("AWS::CloudWatch::Alarm").items()}


def metric_alarms(stack: Stack, namespace: str, metric: str) -> dict[str, dict]:
    return {name: a for name, a in alarms(stack).items()
            if a.get("Namespace") == namespace and a.get("MetricName") == metric}


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_conversation_function_has_an_alarm_from_the_first(defaults: Stack, metric: str) -> None:
    found = metric_alarms(defaults, "AWS/Lambda", metric)
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in found.values()}

    assert watched == set(CONVERSATION_FUNCTIONS)
    for alarm in found.values():
        assert alarm["Dimensions"][0]["Name"] == "FunctionName"
        assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def dead_letter_queues(stack: Stack) -> set[str]:
    """Every queue something dead-letters into: a redrive target, a destination, a rule's DLQ."""
    found = set()
    for queue in stack.of_type("AWS::SQS::Queue").values():
        if "RedrivePolicy" in queue["Properties"]:
            found.add(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
    for config in stack.of_type("AWS::Lambda::EventInvokeConfig").values():
        found.add(config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0])
    for rule in stack.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            found.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    return found


def test_every_dead_letter_queue_alarms_on_its_first_message(defaults: Stack) -> None:
    found = metric_alarms(defaults, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    watched = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in found.values()}

    assert dead_letter_queues(defaults) == {"TurnDeadLetterQueue", "AsyncFailuresQueue"}
    assert watched == dead_letter_queues(defaults)
    for alarm in found.values():
        assert alarm["Dimensions"][0]["Name"] == "QueueName"
        assert alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][1] == "QueueName"
        assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_http_apis_5xx_rate(defaults: Stack) -> None:
    alarm = alarms(defaults)["Api5xxRateAlarm"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (rate,) = [m for m in metrics.values() if m.get("ReturnData", True)]

    for name, metric_name in (("errors", "5xx"), ("requests", "Count")):
        stat = metrics[name]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "AWS/ApiGateway", "MetricName": metric_name,
                                  "Dimensions": [{"Name": "ApiId", "Value": {"Ref": "AgentApi"}}]}
        assert stat["Stat"] == "Sum" and stat["Period"] == 300
    assert rate["Expression"].replace(" ", "") == "100*errors/requests"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and 0 < alarm["Threshold"] < 100
    assert alarm["TreatMissingData"] == "notBreaching", "no requests is no data, not an outage"


def test_alarms_notify_the_topic_only_when_one_is_given(transformed: dict, defaults: Stack) -> None:
    notified = Stack(transformed, AlarmTopicArn=TOPIC_ARN)

    assert len(alarms(defaults)) == 7
    for name, alarm in alarms(defaults).items():
        assert "AlarmActions" not in alarm and "OKActions" not in alarm, name
        assert alarm["AlarmDescription"], name
    for name, alarm in alarms(notified).items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [TOPIC_ARN], name
