"""Logs, traces and metrics (Powertools), one of each per container.

Deployed, every line is Powertools' JSON (with session_id and the request id), which CloudWatch
Logs Insights can query. At a terminal (LOG_FORMAT=text, which `make dev` sets) a line is for a
person: time, level, message, the session, and an error as one line; LOG_FORMAT=json gives the
full record locally too.
"""

import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# Libraries whose standard-library loggers get the same lines as ours.
LIBRARY_LOGGERS = {"agent", "handler", "strands"}


class TextFormatter(LambdaPowertoolsFormatter):
    """One short line per record: ``12:03:04 WARNING message  session=... error=Type: text``."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = json.loads(super().format(record))
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {fields.get('message', '')}"
        if fields.get("session_id"):
            line += f"  session={fields['session_id']}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f"  error={type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
        return line


@dataclass(frozen=True)
class Observability:
    logger: Logger
    tracer: Tracer
    metrics: Metrics


def observability(env: Mapping[str, str] = os.environ) -> Observability:
    service = env.get("POWERTOOLS_SERVICE_NAME", "stateful-agent")
    text = env.get("LOG_FORMAT", "json").lower() == "text"
    logger = Logger(service=service, logger_formatter=TextFormatter() if text else None)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name)  # registered, so that the next line finds it
    copy_config_to_registered_loggers(source_logger=logger, include=LIBRARY_LOGGERS)
    # Reads and deletes emit no metrics by design; that is not worth a warning on every request.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return Observability(
        logger=logger,
        tracer=Tracer(service=service),
        metrics=Metrics(service=service, namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "StatefulAgent")),
    )


def observed(observe: Observability, handle: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``handle`` as a Lambda handler with the container's logs, traces and metrics."""

    @observe.logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @observe.tracer.capture_lambda_handler(capture_response=False)  # replies are conversation content
    @observe.metrics.log_metrics
    def lambda_handler(event: Any, context: Any) -> Any:
        return handle(event, context)

    return lambda_handler
