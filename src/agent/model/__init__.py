"""The model: LiteLLM behind Strands' LiteLLMModel, configured once per container.

- provider: checks the settings, reads the API key (MODEL_API_KEY or Secrets Manager) once, and
  makes each turn's model;
- credentials: what a provider needs before a call (a key, AWS credentials), and what is missing;
- params: MODEL_PARAMS checked against what LiteLLM takes for the provider;
- turn_model: the model of one turn, bound to its deadline, strict about how an answer ends;
- failures: a provider's failure as a domain error that is safe to show;
- priming: LiteLLM's first call run before a SnapStart snapshot;
- compat: every private LiteLLM or Strands name the project touches, and nothing else.
"""

import os

# LiteLLM downloads a price map from the internet at import unless told otherwise; inside a
# VPC without egress that stalls every cold start. The template sets it too; this is the net,
# and it must come before anything imports LiteLLM (every module here does).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from .compat import close_clients_of_running_loop, forget_all_clients  # noqa: E402  (after the default above)
from .failures import as_model_failure, is_rejected_key  # noqa: E402  (after the default above)
from .priming import prime  # noqa: E402  (after the default above)
from .provider import ModelProvider  # noqa: E402  (after the default above)
from .turn_model import IncompleteReply, TurnModel  # noqa: E402  (after the default above)

__all__ = ["IncompleteReply", "ModelProvider", "TurnModel", "as_model_failure", "close_clients_of_running_loop",
           "forget_all_clients", "is_rejected_key", "prime"]
