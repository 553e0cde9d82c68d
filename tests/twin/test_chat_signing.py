"""`make chat`'s signing for a deployed stack: the WebSocket URL presigned for execute-api in the
URL's region, checked by recomputing SigV4 here from its definition (not with botocore, which made
it); the HTTP requests' headers; the token on the URL; what a refusal says (one test with a server)."""

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from agent_client import (
    AgentClient,
    AwsAuth,
    Problem,
    Target,
    TokenAuth,
    presign_websocket_url,
    region_of,
    signed_headers,
)
from aiohttp import web
from botocore.credentials import Credentials

HOST = "a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com"
URL = f"wss://{HOST}/prod"
KEY, SECRET = "AKIDEXAMPLE12345WXYZ", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(url: str, secret: str) -> str:
    """SigV4 of a presigned GET, from AWS's definition: canonical request, string to sign, key."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    canonical = "\n".join(["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host",
                           hashlib.sha256(b"").hexdigest()])
    params = dict(query)
    date, region, service, _ = params["X-Amz-Credential"].split("/")[1:]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], f"{date}/{region}/{service}/aws4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_websocket_url_is_presigned_for_execute_api_in_the_urls_region_with_the_given_key():
    region = region_of(HOST)
    assert region == "eu-west-2"
    signed = presign_websocket_url(URL, Credentials(KEY, SECRET), region)
    parts = urlsplit(signed)
    params = dict(parse_qsl(parts.query))
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", HOST, "/prod")
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert params["X-Amz-Credential"] == f"{KEY}/{today}/eu-west-2/execute-api/aws4_request"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and params["X-Amz-SignedHeaders"] == "host"
    assert 0 < int(params["X-Amz-Expires"]) <= 900
    assert params["X-Amz-Signature"] == expected_signature(signed, SECRET)
    assert params["X-Amz-Signature"] != expected_signature(signed, SECRET + "x")  # the check can fail


def test_temporary_credentials_sign_their_session_token_too():
    signed = presign_websocket_url(URL, Credentials(KEY, SECRET, "session/token+=="), "eu-west-2")
    params = dict(parse_qsl(urlsplit(signed).query))
    assert params["X-Amz-Security-Token"] == "session/token+=="
    assert params["X-Amz-Signature"] == expected_signature(signed, SECRET)


def scope(url: str) -> str:
    """The credential scope a presigned URL was signed for: <region>/<service>."""
    return "/".join(dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"].split("/")[2:4])


def test_the_region_comes_from_the_host_else_from_the_configuration():
    assert region_of("abc123.execute-api.ap-southeast-2.amazonaws.com") == "ap-southeast-2"
    assert region_of("abc123.execute-api.cn-north-1.amazonaws.com.cn") == "cn-north-1"
    assert region_of("chat.example.com") is None
    auth = AwsAuth(Credentials(KEY, SECRET), region="us-west-2")
    assert scope(auth.websocket_url("wss://chat.example.com/prod")) == "us-west-2/execute-api"
    assert scope(auth.websocket_url(URL)) == "eu-west-2/execute-api"
    with pytest.raises(Problem, match="pass --region"):
        AwsAuth(Credentials(KEY, SECRET)).websocket_url("wss://chat.example.com/prod")


def test_http_requests_are_signed_for_execute_api_in_the_apis_region():
    url = "https://f6g7h8.execute-api.us-east-2.amazonaws.com/sessions/abc/messages?limit=100&cursor=a%2Bb%3D"
    headers = signed_headers("GET", url, b"", Credentials(KEY, SECRET, "tok"), "us-east-2")
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    assert "/us-east-2/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "tok" and headers["X-Amz-Date"]


def test_a_token_goes_on_the_url_and_in_the_authorization_header():
    auth = TokenAuth("eyJ.a+b/c=")
    assert auth.websocket_url(URL) == URL + "?token=eyJ.a%2Bb%2Fc%3D"
    assert auth.headers("GET", "https://x/sessions/a/messages", b"") == {"Authorization": "Bearer eyJ.a+b/c="}


def test_the_credentials_used_are_named_without_the_secret():
    said = AwsAuth(Credentials(KEY, SECRET, method="env")).describe()
    assert "…WXYZ" in said and "env" in said and SECRET not in said and KEY not in said


@pytest.mark.slow
def test_a_refusal_names_the_credentials_sent_and_the_signed_url_arrives_as_signed():
    """A stand-in API Gateway on 127.0.0.1 that refuses everything: the presigned $connect URL
    reaches it unchanged (its signature checks out there), and each refusal says what was sent."""
    arrived: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        arrived.append(f"ws://{request.host}{request.raw_path}")
        return web.json_response({"message": "Forbidden"}, status=403)

    async def scenario() -> list[str]:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", refuse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"127.0.0.1:{runner.addresses[0][1]}"
        said = []
        try:
            for auth in (AwsAuth(Credentials(KEY, SECRET, method="shared-credentials-file"), region="eu-west-2"),
                         TokenAuth("eyJ.expired")):
                async with AgentClient(Target(f"ws://{base}/prod", f"http://{base}/", auth)) as agent:
                    for attempt in (agent.connect(), agent.history("abc")):
                        with pytest.raises(Problem) as refused:
                            await attempt
                        said.append(str(refused.value))
        finally:
            await runner.cleanup()
        return said

    said = asyncio.run(scenario())
    signed = dict(parse_qsl(urlsplit(arrived[0]).query))
    assert signed["X-Amz-Signature"] == expected_signature(arrived[0], SECRET)
    assert said[0].startswith("The WebSocket API refused the connection (403), which carried AWS credentials "
                              "(access key …WXYZ from shared-credentials-file): "
                              "that principal needs execute-api:Invoke")
    assert said[1].startswith("The HTTP API refused the request (403), which carried AWS credentials")
    assert said[2].startswith("The WebSocket API refused the connection (403), which carried the JWT given with "
                              "--token: is it expired")
    assert urlsplit(arrived[2]).query == "token=eyJ.expired"
    assert all(SECRET not in line for line in said)
