"""Logger, Tracer and Metrics, one of each per container (Powertools)."""

import logging
import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "stateful-agent")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StatefulAgent"))

# The agent package and Strands log through the standard library; give them the same JSON
# lines (with session_id and request id) instead of the runtime's plain text.
for name in ("agent", "strands"):
    logging.getLogger(name)
copy_config_to_registered_loggers(source_logger=logger, include={"agent", "strands"})

# Reads and deletes emit no metrics by design; that is not worth a warning on every request.
warnings.filterwarnings("ignore", message="No application metrics to publish")
