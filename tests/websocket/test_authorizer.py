"""src/handler/authorizer.py: the WebSocket $connect authorizer (AuthMode=JWT).

Real tokens, real signatures: RSA and EC keys are made here, their public halves served as a JWKS
by an HTTP server on 127.0.0.1, with an OpenID discovery document that names it, as an issuer
publishes them. Nothing leaves the machine.
"""

import ast
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from handler import authorizer

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
AUDIENCES = "web-client,cli-client"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/$connect"
SUB = "0b5e7f1c-1111-2222-3333-444455556666"


class Issuer:
    """An issuer's signing keys, and its JWKS served on 127.0.0.1 (with a count of fetches)."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.fetches = 0
        self.discoverable = True
        self.documents: dict[str, bytes] = {}  # a path served with this body instead (an odd issuer)
        keys = [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())), "kid": "rsa-1", "use": "sig"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())), "kid": "ec-1", "use": "sig"},
        ]
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path in issuer.documents:
                    self.answer(issuer.documents[self.path])
                    return
                if self.path == "/.well-known/openid-configuration" and not issuer.discoverable:
                    self.send_error(503)
                    return
                if self.path == "/.well-known/openid-configuration":  # where jwks_uri is found
                    body = json.dumps({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/oauth2/v1/keys"}).encode()
                elif self.path == "/oauth2/v1/keys":  # not the usual path: only discovery finds it
                    issuer.fetches += 1
                    body = json.dumps({"keys": keys}).encode()
                else:
                    self.send_error(404)
                    return
                self.answer(body)

            def answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: str = "rsa", kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": SUB, "aud": "web-client", "iat": now, "exp": now + 300, **claims}
        payload = {name: value for name, value in payload.items() if value is not None}
        if key == "rsa":
            return jwt.encode(payload, self.rsa, algorithm="RS256", headers={"kid": kid or "rsa-1"})
        return jwt.encode(payload, self.ec, algorithm="ES256", headers={"kid": kid or "ec-1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.server.shutdown()


@pytest.fixture(autouse=True)
def environment(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCES)
    monkeypatch.setenv("JWT_JWKS_URL", f"{issuer.url}/oauth2/v1/keys")
    authorizer.verifier.cache_clear()  # a new container
    yield
    authorizer.verifier.cache_clear()
    issuer.documents.clear()


def connect_event(token: str | None) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer for $connect (identity source: the query string)."""
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Host": "abcdef1234.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
        "queryStringParameters": {"token": token} if token is not None else None,
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "stage": "prod",
                           "connectionId": "L0SM9cOFvHcCIhw=", "requestId": "IU3kkGyEoAMFwZQ=",
                           "apiId": "abcdef1234"},
    }


def authorize(token: str | None) -> dict[str, Any]:
    return authorizer.lambda_handler(connect_event(token), None)


def refused(token: str | None, caplog: pytest.LogCaptureFixture, event: Any = None) -> str:
    """Asserts API Gateway's 401 contract (for `event`, else a connect with `token`); returns what
    was logged (which must not hold the token)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="handler.authorizer"), pytest.raises(Exception) as raised:
        authorizer.lambda_handler(connect_event(token) if event is None else event, None)
    assert str(raised.value) == "Unauthorized" and type(raised.value) is Exception
    logged = caplog.text
    assert "connection refused" in logged
    if token and token.strip():
        signature = token.rsplit(".", 1)[-1]
        assert token not in logged, "the token must never be logged"
        assert len(signature) < 16 or signature not in logged, "nor its signature"
    return logged


# ---- allowed ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_a_valid_token_is_allowed_with_the_caller_in_the_context(issuer: Issuer, key: str) -> None:
    result = authorize(issuer.token(key))

    assert result == {
        "principalId": SUB,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}]},
        "context": {"caller": f"jwt:{SUB}"},
    }


def test_any_listed_audience_and_audience_lists_are_accepted(issuer: Issuer) -> None:
    assert authorize(issuer.token(aud="cli-client"))["principalId"] == SUB
    assert authorize(issuer.token(aud=["other-api", "cli-client"]))["principalId"] == SUB


def test_a_cognito_access_token_is_matched_on_client_id(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    """Cognito access tokens carry client_id and no aud (as the HTTP API's JWT authorizer accepts)."""
    assert authorize(issuer.token(aud=None, client_id="web-client", token_use="access"))["principalId"] == SUB
    assert "audience" in refused(issuer.token(aud=None, client_id="someone-elses-client"), caplog)


def test_a_clock_a_little_behind_is_tolerated(issuer: Issuer) -> None:
    assert authorize(issuer.token(exp=int(time.time()) - 5))["principalId"] == SUB


def test_the_keys_are_fetched_once_per_container(issuer: Issuer) -> None:
    before = issuer.fetches
    for _ in range(3):
        authorize(issuer.token())
    authorize(issuer.token("ec"))

    assert issuer.fetches - before == 1


def test_without_a_jwks_url_the_keys_are_found_by_openid_discovery(issuer: Issuer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.delenv("JWT_JWKS_URL")

    assert authorize(issuer.token(iss=issuer.url))["principalId"] == SUB


def test_an_unreadable_discovery_document_refuses_and_is_tried_again(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("JWT_JWKS_URL")
    monkeypatch.setenv("JWT_ISSUER", "http://127.0.0.1:9")  # discard port: refused
    assert "discovery document" in refused(issuer.token(iss="http://127.0.0.1:9"), caplog)

    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    authorizer.verifier.cache_clear()  # a new container, while the issuer answers 503
    issuer.discoverable = False
    try:
        assert "could not be read" in refused(issuer.token(iss=issuer.url), caplog)
    finally:
        issuer.discoverable = True
    assert authorize(issuer.token(iss=issuer.url))["principalId"] == SUB  # the same container, once it answers


# ---- refused ------------------------------------------------------------------------------


def test_an_expired_token_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    assert "ExpiredSignatureError" in refused(issuer.token(exp=int(time.time()) - 120), caplog)


def test_a_token_for_another_audience_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    assert "audience" in refused(issuer.token(aud="another-app"), caplog)
    assert "audience" in refused(issuer.token(aud=None), caplog)


def test_a_token_from_another_issuer_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    assert "InvalidIssuerError" in refused(issuer.token(iss="https://evil.example.com"), caplog)


def test_a_token_signed_by_another_key_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    """Same kid as the issuer's key, other private key: the signature does not verify."""
    impostor = Issuer()
    try:
        assert "InvalidSignatureError" in refused(impostor.token("rsa"), caplog)
        assert "InvalidSignatureError" in refused(impostor.token("ec"), caplog)
    finally:
        impostor.server.shutdown()


def test_a_key_id_the_issuer_does_not_publish_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    assert "signing key" in refused(issuer.token(kid="rotated-away"), caplog)


def test_a_key_of_the_wrong_type_for_the_algorithm_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    """An ES256 token naming the RSA key's kid must not verify against it."""
    refused(issuer.token("ec", kid="rsa-1"), caplog)


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_unsigned_and_hmac_tokens_are_refused_without_fetching_keys(
        issuer: Issuer, caplog: pytest.LogCaptureFixture, algorithm: str) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": SUB, "aud": "web-client", "exp": now + 300}
    token = jwt.encode(claims, "" if algorithm == "none" else "a-shared-secret-of-32-bytes-long!!",
                       algorithm=algorithm, headers={"kid": "rsa-1"})
    before = issuer.fetches

    assert "is not accepted" in refused(token, caplog)
    assert issuer.fetches == before


@pytest.mark.parametrize("token", [None, "", "   "], ids=["no query string", "empty", "blank"])
def test_a_missing_token_is_refused(token: str | None, caplog: pytest.LogCaptureFixture) -> None:
    assert "no token" in refused(token, caplog)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_a_malformed_token_is_refused(token: str, caplog: pytest.LogCaptureFixture) -> None:
    refused(token, caplog)


def test_a_token_without_sub_or_exp_is_refused(issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    assert "sub" in refused(issuer.token(sub=None), caplog)
    assert "exp" in refused(issuer.token(exp=None), caplog)


def test_unreachable_keys_refuse_the_connection(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("JWT_JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json")  # discard port: refused

    assert "could not be fetched" in refused(issuer.token(), caplog)


@pytest.mark.parametrize("unset", ["JWT_ISSUER", "JWT_AUDIENCE"])
def test_a_misconfigured_function_refuses_every_connection_and_says_why(
        issuer: Issuer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, unset: str) -> None:
    """Refused as API Gateway expects (401), not a 500 at $connect; the cause is logged at ERROR."""
    monkeypatch.delenv(unset)

    logged = refused(issuer.token(), caplog)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1 and f"{unset} not set" in errors[0], logged


# ---- odd input: refused, never an exception (a 500 at $connect) ---------------------------


@pytest.mark.parametrize("claims", [
    {"aud": [["web-client"]]},
    {"aud": [{"name": "web-client"}]},
    {"aud": {"web-client": True}},
    {"aud": 7},
    {"aud": None, "client_id": ["web-client"]},
    {"aud": None, "client_id": {"id": "web-client"}},
    {"aud": None, "client_id": 7},
], ids=["aud nested list", "aud list of objects", "aud object", "aud number",
        "client_id list", "client_id object", "client_id number"])
def test_issuer_signed_audiences_of_the_wrong_type_are_refused(
        issuer: Issuer, caplog: pytest.LogCaptureFixture, claims: dict[str, Any]) -> None:
    assert "audience" in refused(issuer.token(**claims), caplog)


def test_an_issuer_signed_claim_nested_deeper_than_json_reads_is_refused(
        issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    now = int(time.time())
    claims = json.dumps({"iss": ISSUER, "sub": SUB, "aud": "web-client", "exp": now + 300})
    payload = (claims[:-1] + ', "groups": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    token = jwt.api_jws.encode(payload, issuer.rsa, algorithm="RS256", headers={"kid": "rsa-1"})

    refused(token, caplog)


def odd_event(shape: str, issuer: Issuer) -> Any:
    event = connect_event(issuer.token())
    if shape == "token list":
        event["queryStringParameters"] = {"token": [issuer.token()]}
    elif shape == "token number":
        event["queryStringParameters"] = {"token": 12345}
    elif shape == "token object":
        event["queryStringParameters"] = {"token": {"value": issuer.token()}}
    elif shape == "query list":
        event["queryStringParameters"] = [["token", issuer.token()]]
    elif shape == "query text":
        event["queryStringParameters"] = "token=" + issuer.token()
    elif shape == "no query key":
        del event["queryStringParameters"]
    elif shape == "no method ARN":
        del event["methodArn"]
    elif shape == "not an object":
        return ["$connect"]
    return event


@pytest.mark.parametrize("shape", ["token list", "token number", "token object", "query list", "query text",
                                   "no query key", "no method ARN", "not an object"])
def test_a_wrong_typed_token_or_query_string_is_refused(
        issuer: Issuer, caplog: pytest.LogCaptureFixture, shape: str) -> None:
    refused(None, caplog, event=odd_event(shape, issuer))


DEEP = b"[" * 100_000 + b"]" * 100_000
ODD_JWKS = {
    "nested too deeply": DEEP,
    "keys nested too deeply": b'{"keys": ' + DEEP + b"}",
    "not JSON": b'{"keys": [',
    "not UTF-8": b"\xff\xfe\x00",
    "a list": b"[]",
    "keys not a list": b'{"keys": "rsa-1"}',
    "keys of the wrong types": b'{"keys": [1, "x", null, {"kty": ["RSA"], "kid": "rsa-1"}]}',
    "a key with wrong-typed fields": b'{"keys": [{"kty": "RSA", "kid": ["rsa-1"], "n": 5, "e": {"a": 1}}]}',
}


@pytest.mark.parametrize("body", ODD_JWKS.values(), ids=ODD_JWKS.keys())
def test_an_odd_jwks_from_jwt_jwks_url_is_refused(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    issuer.documents["/odd/keys"] = body
    monkeypatch.setenv("JWT_JWKS_URL", f"{issuer.url}/odd/keys")

    refused(issuer.token(), caplog)


ODD_DISCOVERY = {
    "nested too deeply": DEEP,
    "jwks_uri nested too deeply": b'{"jwks_uri": ' + DEEP + b"}",
    "jwks_uri a list": b'{"jwks_uri": ["https://example.com/keys"]}',
    "a list": b"[]",
    "not UTF-8": b"\xff",
}


@pytest.mark.parametrize("body", ODD_DISCOVERY.values(), ids=ODD_DISCOVERY.keys())
def test_an_odd_discovery_document_is_refused(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    issuer.documents["/.well-known/openid-configuration"] = body
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.delenv("JWT_JWKS_URL")

    assert "discovery document" in refused(issuer.token(iss=issuer.url), caplog)


def test_a_discovered_jwks_nested_too_deeply_is_refused(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    issuer.documents["/.well-known/openid-configuration"] = json.dumps({"jwks_uri": f"{issuer.url}/odd/keys"}).encode()
    issuer.documents["/odd/keys"] = DEEP
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.delenv("JWT_JWKS_URL")

    assert "nested too deeply" in refused(issuer.token(iss=issuer.url), caplog)


# ---- a fast cold start --------------------------------------------------------------------

HEAVY = ("litellm", "strands", "agent", "aws_lambda_powertools", "boto3", "botocore", "pydantic", "openai")


def test_the_authorizer_imports_nothing_of_the_agent() -> None:
    """Only the standard library and PyJWT: the rest of the artifact is there, but never loaded."""
    tree = ast.parse((ROOT / "src" / "handler" / "authorizer.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}

    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree)), "no relative imports"
    assert imported - set(sys.stdlib_module_names) == {"jwt"}


@pytest.mark.slow
def test_importing_the_authorizer_loads_no_heavy_package() -> None:
    """`python -X importtime`, in a fresh interpreter, as a cold start imports it (package __init__ included)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import handler.authorizer"],
                            cwd=ROOT / "src", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}

    assert "handler.authorizer" in modules and "jwt" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert not {m for m in modules if m.startswith("handler.") and m != "handler.authorizer"}
