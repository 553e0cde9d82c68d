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
    ("GET", "/sessions/{session_id}/state"),
    ("GET", "/memory"), ("DELETE", "/memory"), ("DELETE", "/memory/{fact_id}"),
    ("GET", "/usage"), ("DELETE", "/sessions/{session_id}/turns/{turn_id}"),
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


def test_the_document_declares_204_without_a_body_security_and_only_statuses_that_occur():
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert set(document["components"]["securitySchemes"]) == {"iam", "jwt"}
    assert document["components"]["securitySchemes"]["jwt"]["scheme"] == "bearer"
    assert "Allow" in document["components"]["responses"]["MethodNotAllowed"]["headers"]
    paths = document["paths"]
    for item in paths.values():
        for operation in item.values():
            assert "content" not in operation["responses"].get("204", {})
            assert {"401", "403"} <= set(operation["responses"])
    assert set(paths["/memory"]["delete"]["responses"]) == {"204", "400", "401", "403", "409", "503"}
    assert "413" in paths["/sessions/{session_id}/messages"]["post"]["responses"]
    cursor = next(p for p in paths["/sessions/{session_id}/messages"]["get"]["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["type"] == "string" and "Opaque" in cursor["description"]
