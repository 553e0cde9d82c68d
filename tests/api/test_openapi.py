"""The OpenAPI document is generated from the routes, and everything that lists routes is derived
from it: the committed docs/openapi.json, the twin's routes (tests/template checks the template)."""

import json

from write_openapi import document

from handler.http_routes import routes
from tests.conftest import ROOT, Api
from twin.events import routes as twin_routes

EXPECTED = {
    ("POST", "/sessions/{session_id}/messages"), ("GET", "/sessions/{session_id}/messages"),
    ("DELETE", "/sessions/{session_id}"), ("GET", "/sessions/{session_id}/turns/{turn_id}"),
    ("GET", "/memory"), ("DELETE", "/memory"), ("DELETE", "/memory/{fact_id}"),
    ("GET", "/sessions"), ("GET", "/sessions/{session_id}"), ("PATCH", "/sessions/{session_id}"),
}


def test_docs_openapi_json_is_fresh():
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == document(), "docs/openapi.json is stale: run `make openapi`"


def test_the_app_the_document_and_the_twin_serve_the_same_routes(api: Api):
    paths = json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert routes(api.services.http) == documented == set(twin_routes()) == EXPECTED


def test_every_route_documents_its_success_and_error_bodies():
    paths = json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert statuses & {"200", "202", "204"}, (method, path)
            assert {"400", "503"} <= statuses, (method, path)
            error = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorOut"}
