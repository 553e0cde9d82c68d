"""The contract is the server: schemathesis generates requests from docs/openapi.json, valid and
invalid ones, sends them to the twin (the handler as Lambda runs it, over real HTTP), and checks
every answer against the document: status declared, body and headers as declared, no 5xx, invalid
input refused, 405 with Allow for methods a path lacks.

Every check runs, with two exceptions, each for its reason:
- ``ignored_auth`` never: it expects a request without credentials to be refused, and the twin (as
  `sam local`) has no authorizer; API Gateway refuses those when deployed (AWS_IAM or the JWT
  authorizer: tests/websocket/test_authorizer.py, tests/template).
- ``positive_data_acceptance`` not on a request with a ``cursor``: a cursor is opaque, valid only as
  the server made it for that caller and session, so a made-up one is 400 by design (no schema can
  say which strings the server made); nor with an ``Idempotency-Key``: a key the fuzzer used before
  with another message is 422 idempotency_key_reused by design, whatever the request looks like;
  nor with ``interrupt_responses``: an interrupt id, like a cursor, is valid only as the server
  made it for a call that waits (an unknown one is 400 by design); nor with an ``output_schema``:
  the document says it is an object of type "object", but whether it is a valid JSON Schema is
  checked against JSON Schema's own metaschema, which no generator follows (an invalid one is 400
  by design, naming the problem)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
EXAMPLES = 25  # per operation and generation mode: the run stays well under a minute

load_all_checks()
CHECKED = [check for check in CHECKS.get_all() if check is not ignored_auth]
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_what_the_document_declares(case, running):
    body = set(case.body) if isinstance(case.body, dict) else set()
    stateful = ("cursor" in (case.query or {}) or "idempotency-key" in {h.lower() for h in case.headers or {}}
                or bool({"interrupt_responses", "output_schema"} & body))
    checks = [check for check in CHECKED if not (stateful and check is positive_data_acceptance)]
    case.call_and_validate(base_url=running.twin.url, checks=checks, timeout=30)
