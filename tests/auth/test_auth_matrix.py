"""The authorisation matrix, generated from the app's route table and the CLI's command tree.

Every (method, path) of `app.routes` must have a policy entry, and every route is called over HTTP
by every role, by the public front-end key and by an anonymous client: allowed calls must get past
the gate (any status but 401/403), refused ones must get 403 (401 when anonymous).
"""

from __future__ import annotations

import re

import pytest
from auth_helpers import make_api_key
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.auth import policy
from liebian.auth.cli_guard import iter_commands
from liebian.web.app import create_app


def route_table(app) -> list[tuple[str, str, bool]]:
    """(method, path template, has a JSON body) for every route of the app."""
    out = []
    for rc in iter_route_contexts(app.routes):
        body = bool(getattr(rc, "body_field", None))
        for method in sorted((rc.methods or set()) - {"HEAD"}):
            out.append((method, rc.path, body))
    return out


def test_every_route_has_a_policy_and_no_policy_is_stale(data_dir):
    app = create_app(run_migrations=False)
    routes = {(m, p) for m, p, _ in route_table(app)}
    missing = sorted(routes - set(policy.ROUTES))
    assert not missing, f"routes without an entry in auth/policy.py ROUTES: {missing}"
    stale = sorted(set(policy.ROUTES) - routes)
    assert not stale, f"policy entries for routes that do not exist: {stale}"
    assert set(policy.ROUTES.values()) <= set(policy.PERMISSIONS) | {policy.ANONYMOUS}


def test_every_cli_command_has_a_policy_and_no_policy_is_stale(data_dir):
    from liebian.cli import app

    paths = {p for p, _ in iter_commands(app)}
    missing = sorted(p for p in paths if policy.command_permission(p) is None)
    assert not missing, f"CLI commands without an entry in auth/policy.py COMMANDS: {missing}"
    assert not sorted(set(policy.COMMANDS) - paths), "COMMANDS entries for commands that do not exist"


def test_roles_follow_least_privilege():
    perms = {r: policy.permissions_of(r) for r in policy.ROLES}
    assert "audit:read" not in perms["admin"] and "audit:read" in perms["auditor"]
    # only admin manages users/keys, erases persons or reveals phones
    for p in ("auth:admin", "privacy:dsr", "pii:reveal"):
        assert [r for r in policy.ROLES if p in perms[r]] == ["admin"]
    # viewer and analyst see aggregates, never persons
    assert "identity:read" not in perms["viewer"] | perms["analyst"]
    assert perms["viewer"] < perms["analyst"]
    assert {"ingest:write", "frontend", "consent:record"} == policy.PUBLIC_SCOPES


def _fill(path: str) -> str:
    # a syntactically valid value for every path parameter (ints where the route wants ints)
    return re.sub(r"\{[^}]+\}", "1", path)


PRINCIPALS = [*policy.ROLES, "public", "anonymous"]
GATE_MESSAGES = ("authentication required", "forbidden: ", "login required")


def _gate_status(response) -> int:
    """The status if the gate (auth.deps) refused the call, else 200 (the handler ran or validated).

    A handler may answer 401/403 itself (wrong password at /login): that is not a refusal."""
    if response.status_code in (401, 403, 303):
        try:
            detail = response.json().get("detail", "")
        except ValueError:
            return 200
        if isinstance(detail, str) and detail.startswith(GATE_MESSAGES):
            return response.status_code
    return 200


@pytest.fixture
def clients(sqlite_store):
    app = create_app(run_migrations=False)
    headers = {role: {"Authorization": f"Bearer {make_api_key('service', role)}"} for role in policy.ROLES}
    headers["public"] = {"X-API-Key": make_api_key("public", None)}
    headers["anonymous"] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, headers


def test_every_route_for_every_principal(clients):
    app, client, headers = clients
    results = []
    for method, path, has_body in route_table(app):
        permission = policy.ROUTES[(method, path)]
        for who in PRINCIPALS:
            granted = (
                policy.PUBLIC_SCOPES
                if who == "public"
                else policy.permissions_of(who if who in policy.ROLES else None)
            )
            allowed = policy.allowed(granted, permission, who == "admin")
            kwargs = {
                "headers": {**headers[who], "content-type": "application/json"},
                "follow_redirects": False,
            }
            if has_body:
                kwargs["content"] = b"{}"  # an allowed call mostly stops at validation (422)
            if path in ("/login", "/logout"):
                kwargs = {"headers": headers[who], "data": {}, "follow_redirects": False}
            response = client.request(method, _fill(path), **kwargs)
            results.append((method, path, who, allowed, _gate_status(response)))
    wrong = []
    for method, path, who, allowed, status in results:
        if allowed and status in (401, 403, 303):
            wrong.append(f"{who} refused {method} {path} ({status})")
        if not allowed:
            expected = {401, 303} if who == "anonymous" else {403}
            if status not in expected:
                wrong.append(f"{who} not refused {method} {path} ({status})")
    assert not wrong, "\n".join(wrong)
    # the matrix really covered routes × principals, and both outcomes occurred
    assert len(results) == len(route_table(app)) * len(PRINCIPALS)
    assert any(r[3] for r in results) and any(not r[3] for r in results)


def test_cli_matrix_every_command_for_every_role():
    """The decision for every command × role, from the same policy the guard enforces."""
    from liebian.cli import app

    for path, _ in iter_commands(app):
        permission = policy.command_permission(path)
        for role in policy.ROLES:
            expected = permission == policy.ANONYMOUS or permission in policy.permissions_of(role)
            assert policy.allowed(policy.permissions_of(role), permission, role == "admin") is expected, (
                path,
                role,
            )


def test_cli_enforces_roles_for_real(sqlite_store, monkeypatch):
    from liebian.cli import app

    runner = CliRunner()
    # fresh store: the local bootstrap admin creates the first admin
    r = runner.invoke(app, ["auth", "create-user", "boss", "--role", "admin"])
    assert r.exit_code == 0, r.output
    assert "one-time password" in r.output
    # from now on an identity is required
    r = runner.invoke(app, ["auth", "users"])
    assert r.exit_code == 3 and "--user" in r.output
    r = runner.invoke(app, ["--user", "boss", "auth", "create-user", "vic", "--role", "viewer"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["--user", "vic", "auth", "create-user", "mallory", "--role", "admin"])
    assert r.exit_code == 3 and "auth:admin" in r.output
    r = runner.invoke(app, ["--user", "vic", "campaign", "list"])
    assert r.exit_code == 3 and "campaign:read" in r.output
    # an API key from the environment: an analyst key may list campaigns but not verify the audit log
    monkeypatch.setenv("LIEBIAN_API_KEY", make_api_key("service", "analyst"))
    r = runner.invoke(app, ["campaign", "list", "--format", "json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["auth", "audit", "verify"])
    assert r.exit_code == 3
    monkeypatch.setenv("LIEBIAN_API_KEY", "lb_bad_key")
    r = runner.invoke(app, ["campaign", "list"])
    assert r.exit_code == 3 and "invalid" in r.output
    monkeypatch.delenv("LIEBIAN_API_KEY")
    # the refusals and the commands are in the audit log, named by who did them
    monkeypatch.setenv("LIEBIAN_API_KEY", make_api_key("service", "auditor"))
    r = runner.invoke(app, ["auth", "audit", "list", "--format", "json", "--limit", "1000"])
    assert r.exit_code == 0, r.output
    import json

    entries = json.loads(r.output)
    assert {"action": "access.denied", "actor": "user:vic", "target": "cli:auth create-user"}.items() <= next(
        e for e in entries if e["action"] == "access.denied"
    ).items()
    assert any(e["actor"] == "user:boss" and e["action"] == "user.create" for e in entries)
