"""`POST /v1/applications/batch`: valid items accepted in one append, invalid ones reported
(the app in-process over each mode's backends)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.api.inprocess import app_fixture, client_fixture, keys_fixture
from tests.conftest import auth, sample_application, wait_for_status

app = app_fixture()
client = client_fixture()
keys = keys_fixture()


def item(application: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return {"idempotency_key": key or str(uuid.uuid4()), "application": application}


def post(client: httpx.Client, key: str, items: list[Any], *, ndjson: bool = False
         ) -> httpx.Response:
    if ndjson:
        body = "\n".join(json.dumps(i) for i in items).encode()
        return client.post("/v1/applications/batch", content=body, headers=auth(
            key, **{"Content-Type": "application/x-ndjson"}))
    return client.post("/v1/applications/batch", json=items, headers=auth(key))


def test_valid_items_are_stored_and_invalid_ones_reported_by_index(client, keys):
    items = [item(sample_application()), item(sample_application(channel="fax")),
             item(sample_application(loan__amount=500.0)), {"no": "key"}]

    answer = post(client, keys["submit"], items)

    assert answer.status_code == 200, answer.text
    results = answer.json()["items"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == ["queued", "refused", "queued", "refused"]
    assert results[1]["errors"] == [{"field": "application.channel", "message":
                                     "expected one of 'web', 'mobile', 'broker', "
                                     "'partner_api', 'branch', 'phone'"}]
    assert wait_for_status(client, keys["submit"], results[0]["id"])["status"] == "stored"
    assert wait_for_status(client, keys["submit"], results[2]["id"])["status"] == "rejected"


def test_resending_the_same_batch_stores_nothing_new(client, keys, deployment):
    items = [item(sample_application(external_id=f"b-{i}")) for i in range(20)]
    first = post(client, keys["submit"], items, ndjson=True).json()["items"]

    again = post(client, keys["submit"], items, ndjson=True).json()["items"]

    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert all(r["replayed"] for r in again) and not any(r["replayed"] for r in first)
    for r in first:
        wait_for_status(client, keys["submit"], r["id"])
    keys_sent = {i["idempotency_key"] for i in items}
    assert len([row for row in deployment.stored() if row[1] in keys_sent]) == 20


def test_one_key_twice_in_a_batch_makes_one_application(client, keys):
    shared = str(uuid.uuid4())
    items = [item(sample_application(), shared), item(sample_application(), shared),
             item(sample_application(loan__amount=20000.0), shared)]

    results = post(client, keys["submit"], items).json()["items"]

    assert results[0]["id"] == results[1]["id"] and results[1]["replayed"]
    assert results[2]["type"] == "/problems/idempotency-key-reused"


def test_more_than_1000_items_is_413_and_nothing_is_stored(client, keys):
    answer = post(client, keys["submit"], [item(sample_application())] * 1001)

    assert answer.status_code == 413


def test_a_batch_that_is_not_an_array_is_400(client, keys):
    answer = client.post("/v1/applications/batch", json={"items": []},
                         headers=auth(keys["submit"]))

    assert answer.status_code == 400
