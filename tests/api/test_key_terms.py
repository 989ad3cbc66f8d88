"""A key bound to a partner submits for that partner only; a key's own rate limit stands in
for the service's default (the app in-process over each mode's backends)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.inprocess import app_fixture, client_fixture
from tests.api.test_batch import item, post
from tests.api.test_submit import submit
from tests.conftest import sample_application

#: A small default, so that a test can go over it: 2 at once, then one a second.
DEFAULT_BURST = 2
app = app_fixture(rate_limit_per_s="1", rate_limit_burst=str(DEFAULT_BURST))
client = client_fixture()


def partner_of(answer: httpx.Response) -> list[dict[str, Any]]:
    return [e for e in answer.json()["errors"] if e["field"] == "partner_id"]


def test_a_partner_key_submits_for_its_own_partner(app, client):
    key = app.key("submit,read", partner_id="acme")

    answer = submit(client, key, sample_application(partner_id="acme"))

    assert answer.status_code == 202, answer.text


def test_a_partner_key_naming_another_partner_or_none_is_refused_and_nothing_stored(
    app, client
):
    key = app.key("submit,read", partner_id="acme", rate_per_s=0)
    idem = str(uuid.uuid4())

    other = submit(client, key, sample_application(partner_id="globex"), idem=idem)
    missing = submit(client, key, sample_application(partner_id=None), idem=idem)
    corrected = submit(client, key, sample_application(partner_id="acme"), idem=idem)

    for refused in (other, missing):
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "/problems/validation-error"
        [error] = partner_of(refused)
        assert "'acme'" in error["message"]
    # Nothing was stored, the key not claimed: the corrected retry is new, not a replay.
    assert corrected.status_code == 202, corrected.text
    assert "idempotent-replayed" not in corrected.headers


def test_an_unbound_key_may_name_any_partner(app, client):
    key = app.key("submit,read", rate_per_s=0)

    answers = [submit(client, key, sample_application(partner_id=p)) for p in ("a", "b", None)]

    assert [a.status_code for a in answers] == [202, 202, 202]


def test_a_batch_refuses_only_the_items_for_another_partner(app, client):
    key = app.key("submit,read", partner_id="acme", rate_per_s=0)
    items = [item(sample_application(partner_id="acme")),
             item(sample_application(partner_id="globex")),
             item(sample_application(partner_id="acme"))]

    answer = post(client, key, items)

    assert answer.status_code == 200, answer.text
    results = answer.json()["items"]
    assert [r["status"] for r in results] == ["queued", "refused", "queued"]
    assert [e["field"] for e in results[1]["errors"]] == ["application.partner_id"]


def test_the_default_limit_refuses_beyond_its_burst(app, client):
    key = app.key("submit,read")

    statuses = [submit(client, key, sample_application()).status_code for _ in range(4)]

    assert statuses[:DEFAULT_BURST] == [202] * DEFAULT_BURST
    assert statuses[DEFAULT_BURST:] == [429] * (4 - DEFAULT_BURST)


def test_a_key_with_a_higher_limit_of_its_own_goes_beyond_the_default(app, client):
    key = app.key("submit,read", rate_per_s=1000.0, burst=1000)

    statuses = [submit(client, key, sample_application()).status_code for _ in range(6)]

    assert statuses == [202] * 6


def test_a_key_with_a_lower_limit_of_its_own_is_held_to_it(app, client):
    key = app.key("submit,read", rate_per_s=0.001, burst=1)

    first, second = (submit(client, key, sample_application()) for _ in range(2))

    assert first.status_code == 202
    assert second.status_code == 429, second.text
    assert int(second.headers["retry-after"]) >= 1


def test_a_batch_takes_as_many_tokens_as_items_from_the_key_s_own_bucket(app, client):
    small = app.key("submit,read", rate_per_s=0.001, burst=3)
    items = [item(sample_application()) for _ in range(4)]

    over = post(client, small, items)
    within = post(client, small, items[:3])

    assert over.status_code == 429, over.text
    assert within.status_code == 200 and within.json()["accepted"] == 3

