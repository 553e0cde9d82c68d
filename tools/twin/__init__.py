"""The local twin: the function's handler served as Lambda and API Gateway would serve it
(HTTP API, WebSocket API, the turn queue), with no AWS account and no Docker."""
