"""API keys over HTTP (scope `admin`): made, listed and revoked as `loanflow keys` does, each
change audited (the app in-process over each mode's backends)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.inprocess import InProcessApp, app_fixture, client_fixture
from tests.api.test_submit import submit
from tests.conftest import auth, sample_application

app = app_fixture()
client = client_fixture()


@pytest.fixture(scope="module")
def admin(app: InProcessApp) -> str:
    return app.key("admin,read")


def make(client: httpx.Client, admin: str, **body: Any) -> httpx.Response:
    return client.post("/v1/keys", json={"scopes": ["submit", "read"], **body},
                       headers=auth(admin))


def audit_of(client: httpx.Client, admin: str, key_id: str) -> list[dict[str, Any]]:
    entries = client.get("/v1/audit", headers=auth(admin)).json()["items"]
    return [e for e in entries if e["target"] == key_id]


def test_an_admin_makes_a_partner_key_that_works_at_once(client, admin):
    made = make(client, admin, label="Acme Brokers", partner_id="acme", rate_per_s=50)

    assert made.status_code == 201, made.text
    body = made.json()
    key = body["key"]
    assert key["state"] == "active" and key["scopes"] == ["read", "submit"]
    assert (key["partner_id"], key["rate_per_s"], key["burst"]) == ("acme", 50.0, 50)
    secret = body["secret"]
    assert submit(client, secret, sample_application(partner_id="acme")).status_code == 202
    assert submit(client, secret, sample_application(partner_id="other")).status_code == 422


def test_the_list_shows_every_key_and_never_a_secret(client, admin):
    made = make(client, admin, label="listed").json()

    listing = client.get("/v1/keys", headers=auth(admin))

    assert listing.status_code == 200
    assert made["key"] in listing.json()["items"]
    assert made["secret"] not in listing.text and admin not in listing.text


def test_making_a_key_is_audited_by_the_admin_s_key(client, admin):
    made = make(client, admin, label="audited", partner_id="globex").json()["key"]

    [entry] = audit_of(client, admin, made["id"])

    assert entry["action"] == "key_created"
    assert entry["actor"] == admin.split("_")[1]
    assert entry["detail"]["partner_id"] == "globex"


def test_a_revoked_key_is_refused_and_its_revocation_audited_once(client, admin):
    made = make(client, admin, label="to revoke").json()

    first = client.post(f"/v1/keys/{made['key']['id']}/revoke", headers=auth(admin))
    again = client.post(f"/v1/keys/{made['key']['id']}/revoke", headers=auth(admin))
    used = submit(client, made["secret"], sample_application())

    assert first.status_code == 200 and first.json()["state"] == "revoked"
    assert again.status_code == 200 and again.json() == first.json()
    assert used.status_code == 401
    actions = [e["action"] for e in audit_of(client, admin, made["key"]["id"])]
    assert sorted(actions) == ["key_created", "key_revoked"]


def test_a_key_in_use_is_refused_at_once_after_its_revocation(client, admin):
    made = make(client, admin, label="leaked").json()
    assert submit(client, made["secret"], sample_application()).status_code == 202

    client.post(f"/v1/keys/{made['key']['id']}/revoke", headers=auth(admin))

    # Not after the lookup cache's TTL: this process made the change, so it knows.
    assert submit(client, made["secret"], sample_application()).status_code == 401


def test_revoking_an_unknown_key_is_404(client, admin):
    answer = client.post("/v1/keys/no-such-key/revoke", headers=auth(admin))

    assert answer.status_code == 404
    assert answer.json()["type"] == "/problems/not-found"


@pytest.mark.parametrize("scopes", ["read", "submit,read,operate"])
def test_only_an_admin_key_may_see_make_or_revoke_keys(app, client, admin, scopes):
    other = app.key(scopes)
    victim = make(client, admin).json()["key"]["id"]

    answers = [client.get("/v1/keys", headers=auth(other)),
               make(client, other),
               client.post(f"/v1/keys/{victim}/revoke", headers=auth(other))]

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert client.get("/v1/keys", headers=auth(admin)).json()["items"][-1]["state"] == "active"


def test_without_a_key_it_is_401(client):
    assert client.get("/v1/keys").status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"scopes": []}, "scopes"),
    ({"scopes": ["fly"]}, "scopes[0]"),
    ({"scopes": ["read"], "colour": "red"}, "colour"),
    ({"scopes": ["read"], "burst": 0}, "burst"),
    ({"scopes": ["read"], "rate_per_s": -1}, "rate_per_s"),
    ({"scopes": ["read"], "partner_id": " acme"}, "partner_id"),
    ({"scopes": ["read"], "label": "ops\u202e"}, "label"),
    ({"scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
])
def test_a_bad_key_body_is_422_naming_the_field_and_makes_nothing(client, admin, body, field):
    before = len(client.get("/v1/keys", headers=auth(admin)).json()["items"])

    answer = client.post("/v1/keys", json=body, headers=auth(admin))

    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert len(client.get("/v1/keys", headers=auth(admin)).json()["items"]) == before


def test_a_body_that_is_not_json_is_400(client, admin):
    answer = client.post("/v1/keys", content=b"{", headers=auth(
        admin, **{"Content-Type": "application/json"}))

    assert answer.status_code == 400
