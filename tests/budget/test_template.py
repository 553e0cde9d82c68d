"""The template's spend guards: the budget settings reach both functions, the tokens-per-hour
alarm exists only when TokenAlarmThreshold is set, and both API stages throttle by default."""

from tests.template.stack import CONVERSATION_FUNCTIONS, TOPIC_ARN, Stack


def test_the_token_alarm_is_off_by_default_and_watches_an_hour_of_tokens(transformed: dict, defaults: Stack) -> None:
    alarmed = Stack(transformed, TokenAlarmThreshold="2000000", AlarmTopicArn=TOPIC_ARN)

    assert "TokensPerHourAlarm" not in defaults.resources
    alarm = alarmed.properties("TokensPerHourAlarm")
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["tokens"]["Expression"].replace(" ", "") == "input+output"
    for name, metric in (("input", "InputTokens"), ("output", "OutputTokens")):
        stat = metrics[name]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "StatefulAgent", "MetricName": metric,
                                  "Dimensions": [{"Name": "service", "Value": "stateful-agent"}]}
        assert stat["Stat"] == "Sum" and stat["Period"] == 3600
    assert alarm["Threshold"] == "2000000" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [TOPIC_ARN]


def test_both_functions_get_the_budget_settings(transformed: dict) -> None:
    stack = Stack(transformed, CallerDailyTokens="500000", MaxOutputTokens="1024")

    for name in CONVERSATION_FUNCTIONS:
        variables = stack.properties(name)["Environment"]["Variables"]
        assert variables["CALLER_DAILY_TOKENS"] == "500000" and variables["MAX_OUTPUT_TOKENS"] == "1024"


def test_both_stages_throttle_every_route_by_default(defaults: Stack) -> None:
    http = defaults.properties("AgentApiApiGatewayDefaultStage")["DefaultRouteSettings"]
    websocket = defaults.properties("WebSocketStage")["DefaultRouteSettings"]

    assert http == websocket == {"ThrottlingRateLimit": "50", "ThrottlingBurstLimit": "100"}
