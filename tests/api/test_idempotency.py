"""Idempotency-Key: replays answer the original, other bodies are refused (the app
in-process), races make one (against a `loanflow serve` process)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.api.inprocess import app_fixture, client_fixture, keys_fixture
from tests.api.test_submit import submit
from tests.conftest import create_key, sample_application, wait_for_status

app = app_fixture()
client = client_fixture()
keys = keys_fixture()


def test_same_key_same_body_replays_the_original_answer(client, keys):
    key = str(uuid.uuid4())
    first = submit(client, keys["submit"], sample_application(), idem=key)

    again = submit(client, keys["submit"], sample_application(), idem=key)

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


def test_same_key_same_meaning_with_other_spacing_is_a_replay(client, keys):
    key = str(uuid.uuid4())
    first = submit(client, keys["submit"], sample_application(), idem=key)
    reordered = dict(reversed(list(sample_application().items())))

    again = submit(client, keys["submit"], reordered, idem=key)

    assert again.json()["id"] == first.json()["id"]


def test_same_key_different_body_is_refused(client, keys):
    key = str(uuid.uuid4())
    submit(client, keys["submit"], sample_application(), idem=key)

    other = submit(client, keys["submit"], sample_application(loan__amount=20000.0), idem=key)

    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"


def test_keys_are_scoped_to_the_api_key(client, keys, app):
    other_key = app.key("submit")
    key = str(uuid.uuid4())

    first = submit(client, keys["submit"], sample_application(), idem=key)
    second = submit(client, other_key, sample_application(), idem=key)

    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]


def test_fifty_concurrent_submissions_of_one_key_make_one_application(server):
    key, api_key = str(uuid.uuid4()), create_key(server.deployment, "submit,read")

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            return submit(c, api_key, sample_application(), idem=key)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(one, range(50)))

    assert all(a.status_code in (202, 409) for a in answers), [a.status_code for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 202}
    assert len(ids) == 1
    [app_id] = ids
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert wait_for_status(c, api_key, app_id)["status"] == "stored"
    assert [row for row in server.deployment.stored() if row[1] == key] == [
        (app_id, key, "stored")
    ]
