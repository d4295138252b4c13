"""The error contract: what the OpenAPI document says about errors is what the app sends.

Every refusal is ``{"detail": "one sentence"}`` (``ErrorPublic``); a refused request adds
``errors`` (each field and why) and never echoes the refused values, which can be secrets.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings

ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Any:
    with TestClient(create_app(settings, common=CommonSettings(database_url=db_url))) as c:
        yield c


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation of the document."""
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]


def test_the_document_describes_every_error_as_error_public(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        label = f"{method.upper()} {path}"
        responses = op["responses"]
        assert "503" in responses, label
        if op.get("parameters") or op.get("requestBody"):
            assert responses["422"]["content"] == {"application/json": {"schema": ERROR_REF}}
        for code, response in responses.items():
            for media, spec in response.get("content", {}).items():
                assert spec.get("schema"), f"{label} {code} {media} has no schema"
            if code[0] not in "45" or path.startswith("/api/v1/ack/"):
                continue  # acknowledge links answer a phone with HTML pages, errors too
            if path == "/api/v1/healthz":
                continue  # 503 is the health report itself
            assert response["content"] == {"application/json": {"schema": ERROR_REF}}, label


def test_a_refused_request_names_each_field_and_echoes_no_value(client: TestClient) -> None:
    secret = "correct-horse-battery-staple-9"
    r = client.post("/api/v1/auth/login", json={"username": ["x"], "password": [secret]})
    assert r.status_code == 422
    body = r.json()
    assert body["detail"] == (
        "body.username: Input should be a valid string; "
        "body.password: Input should be a valid string"
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "username"], ["body", "password"]]
    assert {e["type"] for e in body["errors"]} == {"string_type"}
    assert secret not in r.text


def test_malformed_json_and_bad_queries_answer_the_same_shape(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    bad_json = client.post(
        "/api/v1/auth/login", content=b'{"username": ', headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"].endswith("JSON decode error")
    bad_query = client.get("/api/v1/alarms", params={"limit": 0}, headers=admin_headers)
    assert bad_query.status_code == 422
    assert bad_query.json()["detail"].startswith("query.limit: Input should be greater than")
    many = client.post("/api/v1/users", headers=admin_headers, json=[1, 2])
    assert many.status_code == 422
    assert isinstance(many.json()["detail"], str)
    twice = client.get("/api/v1/tickets?site_id=a&site_id=b&limit=5", headers=admin_headers)
    assert twice.status_code == 422  # not silently the last one
    assert twice.json()["detail"] == "query.site_id: given more than once; it takes one value"
    url = "/api/v1/settings/deadlines"  # JSON true is not the number 1 (schemathesis found it)
    refused = {
        "tier": client.put(url, headers=admin_headers, json={"hours": 1440.0, "tier": True}),
        "hours": client.put(url, headers=admin_headers, json={"hours": True, "tier": 1}),
    }
    for field, r in refused.items():
        assert (r.status_code, r.json()["errors"][0]["loc"]) == (422, ["body", field])
    ticket = {"site_id": "school-001", "rule": "x", "subject": "y", "tier": True}
    r = client.post("/api/v1/tickets", headers=admin_headers, json=ticket)
    assert r.json()["detail"] == "body.tier: Input should be a valid integer"
    unknown = client.get("/api/v1/tickets/999999", headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "ticket 999999 not found"}
