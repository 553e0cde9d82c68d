"""The local twin: the function's handler served as Lambda and API Gateway would serve it (HTTP API,
WebSocket API, the turn queue), with no AWS account and no Docker. It adds no behaviour of its
own: what it does around the handler is what API Gateway, SQS and Lambda do.

    server.py         the aiohttp app on 127.0.0.1:$PORT that puts the parts below together
    http_api.py       HTTP API: request -> payload 2.0 event -> response
    websocket_api.py  WebSocket API at /ws: $connect, route selection, $disconnect
    connections.py    the management API (@connections) the function posts frames to
    turn_queue.py     the SQS FIFO turn queue and its SendMessage call
    poller.py         Lambda's SQS event source mapping: queue -> TurnWorkerFunction
    containers.py     the functions' containers (one invocation at a time), replaced when they die
    snapshot.py       the process that ran init once and forks containers (Linux)
    runtime.py        inside a container: init, then the runtime's loop
    events.py         the events themselves; lambda_context.py the context object
    environment.py    the function's environment; config.py the twin's own settings
    pages.py          /, /docs, /openapi.json; terminal.py the lines it prints
"""
