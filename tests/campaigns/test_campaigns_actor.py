"""The campaign audit names the authenticated caller of every operator action, not a placeholder."""

from __future__ import annotations

from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian.web.app import create_app


def test_the_campaign_audit_names_the_caller(store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        api = Api(client)
        cid = api.create(rules("invite_task"), cid="actor-c1")["id"]
        assert client.put(
            f"/api/v1/campaigns/{cid}", json={"rules": rules("invite_task", title="改"), "note": "copy"}
        ).is_success
        assert client.post(f"/api/v1/campaigns/{cid}/pause").is_success
        assert client.post(f"/api/v1/campaigns/{cid}/end").is_success
        caller = client.get("/api/v1/auth/me").json()["name"]
        entries = client.get(f"/api/v1/campaigns/{cid}/audit").json()
    actions = {e["action"]: e["actor"] for e in entries}
    assert {"campaign.create", "campaign.launch", "campaign.edit", "campaign.pause", "campaign.end"} <= set(
        actions
    )
    assert {
        actions[a]
        for a in ("campaign.create", "campaign.launch", "campaign.edit", "campaign.pause", "campaign.end")
    } == {caller}
