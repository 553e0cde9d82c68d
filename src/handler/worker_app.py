"""TurnWorkerFunction's entry point, `handler.worker_app.lambda_handler`: the turn queue's SQS
event source mapping invokes it with one queued turn (WebSocket turns, `Prefer: respond-async`
POSTs), which runs within TurnTimeout and streams to its connection (worker.py).

Its own function, its own handler: nothing has to tell the turn queue's records from a user's
SQS queue. The container is built once, at init, by the same composition root as AgentFunction's.
"""

import gc

gc.disable()  # init builds long-lived objects only; snapstart.end_init() below resumes the GC

from . import snapstart  # noqa: E402  (after gc.disable: the imports are init)
from .composition import build  # noqa: E402
from .worker import worker_handler  # noqa: E402

services = build()
lambda_handler = worker_handler(services.worker, services.observe)
snapstart.end_init()
