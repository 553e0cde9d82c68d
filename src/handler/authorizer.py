"""The WebSocket API's $connect authorizer (AuthMode=JWT): a Lambda REQUEST authorizer.

Browsers cannot set headers on a WebSocket, so the token comes as `?token=<JWT>`. It is accepted
when, like the HTTP API's JWT authorizer would:
- it is signed (RS256 or ES256 only) by a key of the issuer's JWKS: JWT_JWKS_URL, or else the
  `jwks_uri` of the issuer's OpenID discovery document (<JWT_ISSUER>/.well-known/openid-configuration),
  where the HTTP API's JWT authorizer finds it too (Cognito, Auth0, Okta, Entra ID, Google...);
- `iss` is JWT_ISSUER;
- `aud` is one of JWT_AUDIENCE (comma-separated), or, for Cognito access tokens, which carry no
  `aud`, `client_id` is;
- it has not expired (a few seconds of leeway for clock skew), and has a `sub`.

Allowed: an IAM policy allowing execute-api:Invoke on the connect route, principalId = sub, and
the context {"caller": "jwt:<sub>"} that the function binds the connection to. Anything else:
`Exception("Unauthorized")`, which API Gateway answers with 401; the reason is logged, the token
never is. That is the only exception it raises, whatever the event, the token's claims or the
issuer's documents hold: any other would be a 500 at $connect. A function deployed without
JWT_ISSUER or JWT_AUDIENCE refuses every connection too, and logs that at ERROR.

This function must start fast: it imports PyJWT and the standard library only, nothing of the
agent, LiteLLM, Strands or Powertools (keep it free of imports from the rest of `handler`). The
JWKS client is made once per container, and fetches the keys on first use, then keeps them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 3
# Keys are re-fetched after this, and at once when a token names a key id not seen yet (rotation).
JWKS_CACHE_SECONDS = 300

logger = logging.getLogger("handler.authorizer")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


class Refused(Exception):
    """Why a token is refused; logged, never returned to the client."""


class NotConfigured(Refused):
    """The function itself is not set up: every connection is refused until it is."""


@dataclass
class Verifier:
    issuer: str
    audiences: frozenset[str]
    jwks_url: str | None = None  # None: discovered from the issuer, on first use
    _keys: jwt.PyJWKClient | None = field(default=None, repr=False)

    @property
    def keys(self) -> jwt.PyJWKClient:
        if self._keys is None:  # not kept when discovery fails: the next connection tries again
            url = self.jwks_url or discovered_jwks_url(self.issuer)
            self._keys = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS,
                                         timeout=JWKS_TIMEOUT_SECONDS)
        return self._keys

    def claims(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as error:
            raise Refused(f"malformed token: {error}") from None
        # Checked before any key is fetched: alg=none and HMAC tokens never cost a JWKS request.
        if algorithm not in ALGORITHMS:
            raise Refused(f"algorithm {algorithm!r} is not accepted")
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            # The key decides the algorithm, not the token: an ES256 header on an RSA key is refused.
            if key.algorithm_name != algorithm:
                raise Refused(f"algorithm {algorithm!r} does not match the key's ({key.algorithm_name})")
            claims = jwt.decode(
                token, key.key, algorithms=[algorithm], issuer=self.issuer, leeway=LEEWAY_SECONDS,
                # aud is checked below: Cognito access tokens carry client_id instead
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWKClientConnectionError as error:
            raise Refused(f"the issuer's keys could not be fetched: {error}") from None
        except RecursionError:  # a JWKS nested deeper than json can read
            raise Refused("the issuer's keys are nested too deeply to read") from None
        except (jwt.PyJWTError, ValueError, TypeError) as error:  # a key PyJWT cannot use, too
            raise Refused(f"{type(error).__name__}: {error}") from None
        if not self._audience_matches(claims):
            raise Refused("audience (aud or client_id) is not one of JWT_AUDIENCE")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise Refused("sub is empty")
        return claims

    def _audience_matches(self, claims: dict[str, Any]) -> bool:
        """Only text is compared: a list or an object where a string belongs matches nothing."""
        audience = claims.get("aud")
        if audience is None:
            audience = claims.get("client_id")
            return isinstance(audience, str) and audience in self.audiences
        audiences = [audience] if isinstance(audience, str) else audience
        return isinstance(audiences, list) and any(isinstance(a, str) and a in self.audiences for a in audiences)


@functools.cache
def verifier() -> Verifier:
    """Built on the first request (from the environment), then kept for the container's life."""
    issuer = os.environ.get("JWT_ISSUER", "").strip()
    audiences = frozenset(a.strip() for a in os.environ.get("JWT_AUDIENCE", "").split(",") if a.strip())
    if not issuer or not audiences:
        missing = " and ".join(name for name, value in (("JWT_ISSUER", issuer), ("JWT_AUDIENCE", audiences))
                               if not value)
        raise NotConfigured(f"{missing} not set: set them in the function's environment (template.yaml)")
    return Verifier(issuer=issuer, audiences=audiences, jwks_url=os.environ.get("JWT_JWKS_URL", "").strip() or None)


def discovered_jwks_url(issuer: str) -> str:
    """The ``jwks_uri`` of the issuer's OpenID Connect discovery document."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (the issuer's https URL)
            jwks_uri = json.load(response).get("jwks_uri")
    except (OSError, ValueError, AttributeError, RecursionError) as error:  # unreachable, an HTTP error,
        # not a JSON object, nested deeper than json reads
        raise Refused(f"the issuer's discovery document ({url}) could not be read: {error}") from None
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise Refused(f"the issuer's discovery document ({url}) has no jwks_uri")
    return jwks_uri


def token_of(event: Any) -> str:
    """The `?token=` query parameter; anything but text there is refused like a missing token."""
    parameters = event.get("queryStringParameters") if isinstance(event, dict) else None
    token = parameters.get("token") if isinstance(parameters, dict) else None
    if token is not None and not isinstance(token, str):
        raise Refused(f"the token query parameter is a {type(token).__name__}, not text")
    if token is None or not token.strip():
        raise Refused("no token in the query string")
    return token.strip()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("requestContext") if isinstance(event, dict) else None
    request = request if isinstance(request, dict) else {}
    where = {"connectionId": request.get("connectionId"), "requestId": request.get("requestId")}
    try:
        claims = verifier().claims(token_of(event))
        subject = claims["sub"]
        allowed = {
            "principalId": subject,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
            },
            "context": {"caller": f"jwt:{subject}"},
        }
    except NotConfigured as reason:
        logger.error(json.dumps({"message": "connection refused: the authorizer is not configured",
                                 "reason": str(reason), **where}))
        raise Exception("Unauthorized") from None  # API Gateway's contract for 401
    except Refused as reason:
        logger.warning(json.dumps({"message": "connection refused", "reason": str(reason), **where}))
        raise Exception("Unauthorized") from None
    except Exception as error:  # fail closed: anything unforeseen is a refusal, never a 500
        logger.error(json.dumps({"message": "connection refused: the authorizer failed",
                                 "reason": type(error).__name__, **where}))
        raise Exception("Unauthorized") from None
    logger.info(json.dumps({"message": "connection allowed", "sub": subject, **where}))
    return allowed
