"""What a provider needs before it can be called (an API key, AWS credentials), and the one line
naming what is missing, found without a network call.

- A server on a local or private host (Ollama, vLLM, llama.cpp, LM Studio, `make model`) asks for
  no key; LiteLLM's OpenAI client still wants some string, so it gets LOCAL_SERVER_KEY.
- A hosted provider's key: LiteLLM's own check (``litellm.validate_environment``), which knows
  each provider's variable (OPENAI_API_KEY, NEBIUS_API_KEY, ...).
- Bedrock: botocore's credential chain (environment, shared files, SSO, credential_process),
  without the two providers that fetch over the network (container and instance metadata).

    missing_key("openai/gpt-4o-mini", api_key=None, api_base=None)
    # "MODEL_ID openai/gpt-4o-mini needs an API key and none is set: set MODEL_API_KEY (...)"
"""

import ipaddress
import os
from urllib.parse import urlsplit

import botocore.session
import litellm

LOCAL_SERVER_KEY = "not-needed"
AWS_PROVIDERS = {"bedrock", "bedrock_converse", "sagemaker", "sagemaker_chat"}
# Where botocore would fetch credentials over HTTP: Lambda's SnapStart container endpoint, ECS,
# EC2's instance metadata. Their variables being set is taken as credentials being there.
NETWORK_PROVIDERS = ("container-role", "iam-role")
CONTAINER_CREDENTIALS = ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
PRIVATE_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".localhost")


def is_local_server(api_base: str | None) -> bool:
    """A host on this machine or a private network: loopback, a private address, a name with no
    dot (a compose service such as ``ollama``) or a private suffix (host.docker.internal)."""
    try:
        host = urlsplit(api_base or "").hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(PRIVATE_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local


def missing_key(model_id: str, api_key: str | None, api_base: str | None) -> str | None:
    """One line naming the key ``model_id`` needs and lacks (variable names, never values), or
    None: a key is set, the server is local, or the provider needs none (Bedrock signs instead)."""
    if api_key or is_local_server(api_base) or uses_aws(model_id):
        return None
    try:
        missing = litellm.validate_environment(model=model_id, api_key=api_key, api_base=api_base).get("missing_keys")
    except Exception:  # not routable: the provider's own check names that
        return None
    keys = [key for key in missing or [] if key.endswith("_KEY")]
    if not keys:
        return None
    return (f"MODEL_ID {model_id} needs an API key and none is set: set MODEL_API_KEY (deployed: the "
            f"ModelApiKeySecretArn parameter) or {' or '.join(keys)}.")


def missing_aws_credentials(model_id: str) -> str | None:
    """One line saying that ``model_id`` signs with AWS credentials and botocore finds none, or None."""
    return no_aws_credentials(model_id) if uses_aws(model_id) and not aws_credentials_found() else None


def no_aws_credentials(model_id: str | None = None) -> str:
    model = f"MODEL_ID {model_id}" if model_id else "The model"
    return (f"{model} uses AWS credentials and none were found: set AWS_PROFILE (after "
            "`aws sso login` or `aws configure`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")


def uses_aws(model_id: str) -> bool:
    try:
        return litellm.get_llm_provider(model_id)[1] in AWS_PROVIDERS
    except Exception:
        return False


def aws_credentials_found() -> bool:
    """Whether botocore would find credentials, asked without a network call."""
    if any(os.environ.get(name) for name in CONTAINER_CREDENTIALS):
        return True
    resolver = botocore.session.Session().get_component("credential_provider")
    for name in NETWORK_PROVIDERS:
        resolver.remove(name)
    try:
        return resolver.load_credentials() is not None
    except Exception:  # a broken profile: botocore names it on the first call
        return True
