"""Every JSON request body of the app refuses unknown fields (422 naming the field): a misspelled
field must never fall back silently to a default. Generated from the app, so a new route cannot
forget (its body model inherits `liebian.schemas.Request`, or sets `extra="forbid"`)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from liebian.campaigns.verification import SIGNATURE_HEADER, sign
from liebian.web.app import create_app

UNKNOWN = "zz_not_a_field"


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(run_migrations=False).openapi()


def _json_bodies(spec: dict) -> list[tuple[str, str, dict]]:
    """(method, path, schema) of every operation with a JSON request body."""
    out = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                out.append((method.upper(), path, content["application/json"]["schema"]))
    return out


def _lenient_objects(schema: dict, components: dict, trail: str, seen: set[str]) -> list[str]:
    """The object shapes (with named properties) inside a request body that accept unknown fields,
    nested models included; free-form dicts (no properties) are deliberate and allowed."""
    found: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return found
        seen.add(name)
        return _lenient_objects(components[name], components, f"{trail} > {name}", seen)
    if schema.get("properties") and schema.get("additionalProperties") is not False:
        found.append(trail)
    children = [
        *schema.get("properties", {}).values(),
        *schema.get("anyOf", []),
        *schema.get("oneOf", []),
        *schema.get("allOf", []),
        *schema.get("prefixItems", []),
    ]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        found.extend(_lenient_objects(child, components, trail, seen))
    return found


def test_every_json_request_body_forbids_unknown_fields(spec, data_dir):
    bodies = _json_bodies(spec)
    assert len(bodies) > 40  # the walk sees the app's routes (not an empty document)
    components = spec.get("components", {}).get("schemas", {})
    lenient = [
        trail
        for method, path, schema in bodies
        for trail in _lenient_objects(schema, components, f"{method} {path}", set())
    ]
    assert not lenient, (
        "request bodies that ignore unknown fields (inherit liebian.schemas.Request):\n" + "\n".join(lenient)
    )


ORDER_CALLBACK = "/api/v1/orders/callback"
SIGNED_ORDER = {
    "shop_id": "strict",
    "order_id": "o-1",
    "status": "paid",
    "amount_fen": 100,
    "buyer": {"id_type": "unionid", "id": "u-1"},
}


def test_an_unknown_field_is_refused_over_http_naming_it(store, admin_headers):
    """Every JSON route, called by an admin with one unknown field: 422 naming it (validation runs
    before the handler, so nothing is written)."""
    app = create_app(run_migrations=False)
    bodies = _json_bodies(app.openapi())
    missed = []
    with TestClient(app, headers=admin_headers) as client:
        shop_secret = client.post("/api/v1/orders/shops", json={"shop_id": "strict"}).json()["secret"]
        for method, path, schema in bodies:
            if schema.get("type") not in (None, "object") and "$ref" not in schema:
                continue  # a body that is not an object (a list) has no fields to misspell
            url = re.sub(r"\{[^}]+\}", "1", path)
            if path == ORDER_CALLBACK:  # authenticated by its body's signature, checked first
                body = json.dumps({**SIGNED_ORDER, UNKNOWN: 1}).encode()
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(shop_secret, body)}
                r = client.request(method, url, content=body, headers=headers)
            else:
                r = client.request(method, url, json={UNKNOWN: 1})
            answer = r.json() if r.status_code == 422 else {}
            fields = [e.get("field") for e in answer.get("errors", [])] + [answer.get("field")]
            if UNKNOWN not in fields:
                missed.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
    assert not missed, "\n".join(missed)
