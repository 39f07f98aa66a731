"""Admin API for SaaS subscriptions: /admin/orgs/<org>/subscriptions."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import ADMIN

TEAM = {
    "provider": "openai",
    "plan": "ChatGPT Team",
    "seats": 10,
    "unit_price": "30.00",
    "billing_cycle": "monthly",
    "start_date": "2026-01-15",
}


def test_add_list_remove(client: FlaskClient, org_key: str) -> None:
    created = client.post("/admin/orgs/acme/subscriptions", json=TEAM, headers=ADMIN)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["subscription_id"].startswith("sub_")
    assert (body["seats"], body["unit_price"], body["currency"]) == (10, "30.000000", "USD")
    assert body["end_date"] is None
    listed = client.get("/admin/orgs/acme/subscriptions", headers=ADMIN).get_json()
    assert [s["subscription_id"] for s in listed["subscriptions"]] == [body["subscription_id"]]
    gone = client.delete(f"/admin/orgs/acme/subscriptions/{body['subscription_id']}", headers=ADMIN)
    assert gone.status_code == 204
    assert client.get("/admin/orgs/acme/subscriptions", headers=ADMIN).get_json() == {
        "subscriptions": []
    }
    again = client.delete(
        f"/admin/orgs/acme/subscriptions/{body['subscription_id']}", headers=ADMIN
    )
    assert again.status_code == 404


def test_needs_the_admin_key(client: FlaskClient, org_key: str) -> None:
    assert client.get("/admin/orgs/acme/subscriptions").status_code == 401
    org = client.get("/admin/orgs/acme/subscriptions", headers={"X-API-Key": org_key})
    assert org.status_code == 401


def test_bad_input_is_a_problem(client: FlaskClient, org_key: str) -> None:
    bad = client.post(
        "/admin/orgs/acme/subscriptions",
        json={**TEAM, "seats": 0, "billing_cycle": "weekly"},
        headers=ADMIN,
    )
    assert bad.status_code == 422
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    assert {e["field"] for e in bad.get_json()["errors"]} == {"seats", "billing_cycle"}
    backwards = client.post(
        "/admin/orgs/acme/subscriptions", json={**TEAM, "end_date": "2026-01-01"}, headers=ADMIN
    )
    assert backwards.status_code == 422
    assert [e["field"] for e in backwards.get_json()["errors"]] == ["end_date"]
    unknown = client.post("/admin/orgs/nobody/subscriptions", json=TEAM, headers=ADMIN)
    assert unknown.status_code == 404
    path = client.get("/admin/orgs/acme/subscriptions/..%2Fx", headers=ADMIN)
    assert path.status_code in (400, 404)


def test_listed_in_openapi(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/admin/orgs/{org}/subscriptions" in paths
    assert "delete" in paths["/admin/orgs/{org}/subscriptions/{subscription_id}"]
