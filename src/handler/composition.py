"""The composition root: everything that lives as long as the container, built once at init.

Init is where Lambda gives full CPU and what SnapStart snapshots; requests then find the settings,
the model, the AWS clients, the store and the routes ready. Nothing else in the function does
work at import. Tests build as many independent containers as they like with `build(env)`.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from agent import Conversations, ModelProvider, Settings
from agent.aws_clients import AwsClients
from agent.store import open_store

from . import snapstart
from .http_routes import http_api
from .observability import Observability, observability
from .sources import Sources
from .turn_queue import TurnQueue
from .turn_service import TurnService
from .websocket_routes import WebSocketRoutes
from .worker import Worker


@dataclass
class Services:
    settings: Settings
    # Deployed on Lambda (not sam local, not the twin): a request without an identity is refused.
    deployed: bool
    clients: AwsClients
    models: ModelProvider
    conversations: Conversations
    turns: TurnService
    queue: TurnQueue
    observe: Observability
    http: APIGatewayHttpResolver = field(init=False)
    websocket: WebSocketRoutes = field(init=False)
    sources: Sources = field(init=False)
    worker: Worker = field(init=False)


def build(env: Mapping[str, str] = os.environ, clients: AwsClients | None = None) -> Services:
    settings = Settings.from_env(env)
    clients = clients or AwsClients()
    observe = observability(env)
    models = ModelProvider(settings, clients)
    models.warm_up()
    # A key read at init would otherwise live in every restored environment until it is rotated away.
    snapstart.after_restore(models.reset)
    deployed = on_deployed_lambda(env)
    conversations = Conversations(settings, open_store(settings, clients), models, name_endpoint_in_errors=not deployed)
    queue = TurnQueue(clients, settings.turn_queue_url)
    services = Services(
        settings=settings, deployed=deployed, clients=clients, models=models,
        conversations=conversations, queue=queue, observe=observe,
        turns=TurnService(conversations, queue, observe, settings.idempotency_ttl_seconds),
    )
    services.http = http_api(services)
    services.websocket = WebSocketRoutes(services)
    services.sources = Sources(services)
    services.worker = Worker(services)
    return services


def on_deployed_lambda(env: Mapping[str, Any]) -> bool:
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and env.get("AWS_SAM_LOCAL") != "true"
