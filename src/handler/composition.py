"""The composition root: everything that lives as long as the container, built once at init.

Init is where Lambda gives full CPU and what SnapStart snapshots; requests then find the settings,
the model, the AWS clients, the store and the routes ready. Nothing else in the function does
work at import. Tests build as many independent containers as they like with `build(env)`.

Each part gets only what it uses; nothing below imports this module. Both entry points
(app.py for AgentFunction, worker_app.py for TurnWorkerFunction) build the same container.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from agent import CallerMemory, Conversations, ModelProvider, Settings
from agent.aws_clients import AwsClients
from agent.store import SessionStore, open_store
from agent.usage import CallerUsage
from agent.your_agent import agent_tools, mcp_servers

from . import snapstart
from .http_routes import http_api
from .observability import Observability, observability
from .sources import Sources
from .turn_queue import TurnQueue
from .turn_service import TurnService
from .websocket_routes import WebSocketRoutes
from .worker import Worker


@dataclass(frozen=True)
class Services:
    """What one container built: the entry points' handlers, and what tests look into."""

    settings: Settings
    clients: AwsClients
    models: ModelProvider
    store: SessionStore
    conversations: Conversations
    observe: Observability
    http: APIGatewayHttpResolver
    websocket: WebSocketRoutes
    sources: Sources
    worker: Worker


def build(env: Mapping[str, str] = os.environ, clients: AwsClients | None = None) -> Services:
    settings = Settings.from_env(env)
    clients = clients or AwsClients()
    observe = observability(env)
    models = ModelProvider(settings, clients)
    models.warm_up()
    # A key read at init would otherwise live in every restored environment until it is rotated away.
    snapstart.after_restore(models.reset)
    # Deployed on Lambda (not sam local, not the twin): a request without an identity is refused.
    deployed = on_deployed_lambda(env)
    store = open_store(settings, clients)
    conversations = Conversations(settings, store, models, agent_tools(settings), name_endpoint_in_errors=not deployed,
                                  mcp_servers=mcp_servers(settings, clients))
    turns = TurnService(conversations, TurnQueue(clients, settings.turn_queue_url), observe,
                        settings.idempotency_ttl_seconds, CallerUsage(store.objects, settings.caller_daily_tokens))
    memory = CallerMemory(store, enabled=settings.memory)
    limit, callback_url = settings.max_message_chars, settings.websocket_callback_url
    prepare_clients(clients, settings)
    return Services(
        settings=settings, clients=clients, models=models, store=store, conversations=conversations, observe=observe,
        http=http_api(turns, conversations, memory, deployed, limit),
        websocket=WebSocketRoutes(turns, store, clients, callback_url, deployed, limit),
        sources=Sources(turns, conversations, memory, limit),
        worker=Worker(turns, clients, callback_url),
    )


def prepare_clients(clients: AwsClients, settings: Settings) -> None:
    """The AWS clients a turn uses, made during init rather than on a turn's path: each service's
    first (its model loaded, the costly part) now; before a SnapStart snapshot, every tier too
    (a turn ends with short-deadline requests, the lease's release), so that no restored
    environment makes one."""
    services = [(service, url) for service, url, used in (
        ("s3", None, settings.session_bucket), ("sqs", None, settings.turn_queue_url),
        ("apigatewaymanagementapi", settings.websocket_callback_url, settings.websocket_callback_url)) if used]
    for service, url in services:
        clients.prepare(service, url)

    def every_tier() -> None:
        for service, url in services:
            clients.prepare(service, url, every_tier=True)

    snapstart.before_snapshot(every_tier)


def on_deployed_lambda(env: Mapping[str, Any]) -> bool:
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and env.get("AWS_SAM_LOCAL") != "true"
