"""What `make bench-latency` and `make bench-cost` count, without running the twin: a request's kind
from its first bytes, round trips from arrival times, a turn's numbers from a proxy log, a path's
cost from the requests a turn made; and the twin's two settings the bench relies on."""

import argparse
import sys

import bench_cost
import pytest
from bench_latency import Points, request_kind, round_trips, turn_numbers

from twin import environment


@pytest.mark.parametrize(("head", "kind"), [
    (b"GET /bucket/sessions/local/session_s/agents/agent_default/agent.json HTTP/1.1\r\nHost: x\r\n\r\n", "S3 GET"),
    (b"GET /bucket?list-type=2&prefix=sessions%2F HTTP/1.1\r\nHost: x\r\n\r\n", "S3 LIST"),
    (b"GET /bucket/key?x-id=GetObject&not-list-type=2 HTTP/1.1\r\n\r\n", "S3 GET"),
    (b"PUT /bucket/sessions/local/session_s.lease HTTP/1.1\r\nIf-None-Match: *\r\n\r\n", "S3 PUT"),
    (b"DELETE /bucket/sessions/local/session_s.lease HTTP/1.1\r\n\r\n", "S3 DELETE"),
    (b"POST /bucket?delete HTTP/1.1\r\n\r\n", "S3 POST"),
    (b"HEAD /bucket/key HTTP/1.1\r\n\r\n", "S3 HEAD"),
    (b"POST /_aws/sqs HTTP/1.1\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.SendMessage"
     b"\r\n\r\n{}", "SQS SendMessage"),
    (b"POST /_aws/sqs/ HTTP/1.1\r\nx-amz-target: AmazonSQS.GetQueueAttributes\r\n\r\n", "SQS GetQueueAttributes"),
    (b"POST /_aws/connections/@connections/abc%3D HTTP/1.1\r\n\r\n{\"type\": \"reply\"}", "@connections POST"),
])
def test_a_request_is_classified_from_its_request_line_and_headers(head, kind):
    assert request_kind(head) == kind


def test_round_trips_are_the_longest_chain_of_requests_each_sent_after_the_one_before_was_answered():
    # two together, then one sent after both were answered, then two more together: 3
    assert round_trips([(0.000, 0.030), (0.004, 0.031), (0.032, 0.060), (0.061, 0.090), (0.062, 0.095)]) == 3
    # a request sent while another is in flight does not wait for it, however late it starts
    assert round_trips([(0.000, 0.100), (0.050, 0.080), (0.081, 0.110)]) == 2
    assert round_trips([(0.060, 0.09), (0.000, 0.03), (0.004, 0.03)]) == 2  # in any order
    assert round_trips([(0.0, float("inf")), (0.01, 0.02)]) == 1  # unanswered: nothing waited on it
    assert round_trips([]) == 0


def _answered(log, after=0.025):
    """Every request answered ``after`` it arrived (the proxy's delay)."""
    return {id(entry): entry[0] + after for entry in log}


def test_a_turns_numbers_split_its_requests_at_the_model_and_count_all_until_quiet():
    log = [(0.5, "S3 GET", ""),  # the turn before
           (1.001, "S3 GET", ""), (1.002, "S3 PUT", ""),  # lease and read: one trip before the model
           (1.060, "S3 PUT", ""), (1.061, "S3 PUT", ""),  # the commit
           (1.100, "S3 DELETE", ""),  # the release
           (1.200, "S3 PUT", ""),  # after the answer, before quiet
           (2.000, "S3 GET", "")]  # someone else's
    points = Points(sent=1.0, answered=1.150)
    numbers = turn_numbers(points, log, model_in=[0.4, 1.030], model_out=[0.45, 1.050], until=1.5,
                           answers=_answered(log))
    assert (numbers["before_rt"], numbers["after_rt"], numbers["all_rt"]) == (1, 2, 3)
    assert numbers["before_ms"] == pytest.approx(30) and numbers["after_ms"] == pytest.approx(100)
    assert numbers["all_ms"] == pytest.approx(130) and numbers["model_calls"] == 1  # the model's 20 ms left out
    assert numbers["requests"] == {"S3 GET": 1, "S3 PUT": 4, "S3 DELETE": 1}


def test_an_async_turns_202_is_counted_apart():
    log = [(1.001, "S3 PUT", ""), (1.040, "SQS SendMessage", ""), (1.300, "S3 PUT", "")]
    numbers = turn_numbers(Points(sent=1.0, answered=1.4, accepted=1.1), log, [1.2], [1.25], 1.5, _answered(log))
    assert (numbers["accepted_rt"], numbers["accepted_ms"]) == (2, pytest.approx(100))
    assert numbers["before_rt"] == 2 and numbers["after_rt"] == 1


PRICES = {"lambda_gb_second_arm64": 1e-5, "lambda_request": 2e-7, "s3_put_copy_post_list": 5e-6, "s3_get": 4e-7,
          "http_api_request": 1e-6, "websocket_message": 1e-6, "websocket_connection_minute": 2.5e-7,
          "sqs_fifo_request": 5e-7}
ARGS = argparse.Namespace(model_seconds=3.0, overhead_seconds=0.0, memory_mb=1024, arch="arm64", summary_every=20,
                          connected_minutes=1.0)


def test_a_synchronous_turn_costs_what_its_measured_requests_and_the_model_wait_cost():
    path = bench_cost.turn_path("sync HTTP", {"S3 PUT": 6, "S3 POST": 1, "S3 GET": 1, "S3 DELETE": 1})
    assert (path.s3_put, path.s3_get, path.invocations, path.http_requests) == (7, 1, 1, 1)
    # 3 s at 1 GB + one invocation + 7 PUT-priced + 1 GET + one HTTP request; the DELETE is free
    expected = 3 * 1e-5 + 2e-7 + 7 * 5e-6 + 4e-7 + 1e-6
    assert bench_cost.turn_cost(PRICES, path, ARGS, summaries=False, memory=False) == pytest.approx(expected)


def test_a_websocket_turn_adds_the_client_message_and_the_event_source_mappings_sqs_calls():
    requests = {"S3 PUT": 10, "S3 GET": 5, "S3 LIST": 1, "S3 DELETE": 2, "SQS SendMessage": 1,
                "@connections POST": 4}
    path = bench_cost.turn_path("WebSocket", requests)
    assert (path.s3_put, path.s3_get, path.ws_messages, path.sqs_requests, path.invocations) == (11, 5, 5, 3, 2)
    assert bench_cost.turn_path("WebSocket", requests, frames=10).ws_messages == 11
    expected = (3.1 * 1e-5 + 2 * 2e-7 + 11 * 5e-6 + 5 * 4e-7 + 5 * 1e-6 + 2.5e-7 + 3 * 5e-7)
    assert bench_cost.turn_cost(PRICES, path, ARGS, summaries=False, memory=False) == pytest.approx(expected)
    async_path = bench_cost.turn_path("async HTTP", requests)
    assert (async_path.http_requests, async_path.ws_messages) == (2, 0)


def test_the_functions_code_root_is_lambda_task_root_when_set(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", ["/elsewhere", str(environment.SRC)])
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    environment.put_code_on_path()
    assert sys.path[0] == str(tmp_path)
    monkeypatch.delenv("LAMBDA_TASK_ROOT")
    environment.put_code_on_path()
    assert sys.path[0] == str(environment.SRC)


def test_the_functions_reach_sqs_and_connections_at_the_aws_endpoint_when_one_is_given():
    env = environment.function_environment({}, "http://127.0.0.1:3000", 29, 300, "http://127.0.0.1:4000")
    assert env["AWS_ENDPOINT_URL_SQS"] == "http://127.0.0.1:4000/_aws/sqs"
    assert env["WEBSOCKET_CALLBACK_URL"] == "http://127.0.0.1:4000/_aws/connections"
    assert env["TURN_QUEUE_URL"].startswith("http://127.0.0.1:4000/_aws/sqs/")
    assert environment.function_environment({}, "http://127.0.0.1:3000", 29, 300)["AWS_ENDPOINT_URL_SQS"] == (
        "http://127.0.0.1:3000/_aws/sqs")
