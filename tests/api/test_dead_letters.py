"""Retries, dead letters and manual review, end to end over HTTP in both modes.

The app runs in-process with the documented test-only LOANFLOW_FAIL_MARKER: an
application whose external_id starts with it fails every processing attempt.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.api.test_submit import submit
from tests.conftest import auth, sample_application, wait_for_status

MARKER = "POISON-"

app = app_fixture(fail_marker=MARKER, max_attempts="2")
client = client_fixture()
keys = keys_fixture()


@pytest.fixture(scope="module")
def operator(app: InProcessApp) -> str:
    return app.key("read,operate")


def poison(client: httpx.Client, keys: dict[str, str], tag: str | None = None) -> str:
    tag = tag or uuid.uuid4().hex[:8]
    answer = submit(client, keys["submit"], sample_application(external_id=MARKER + tag))
    assert answer.status_code == 202
    return str(answer.json()["id"])


def wait_dead_lettered(client: httpx.Client, key: str, app_id: str) -> dict[str, Any]:
    result = wait_for_status(client, key, app_id, timeout_s=15)
    assert result["status"] == "dead_lettered", result
    return result


def letter(client: httpx.Client, key: str, app_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/dead-letters/{app_id}", headers=auth(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_poison_application_is_dead_lettered_while_its_neighbours_are_stored(client, keys):
    good = [submit(client, keys["submit"], sample_application()).json()["id"] for _ in range(5)]
    bad = poison(client, keys)

    assert {wait_for_status(client, keys["submit"], g)["status"] for g in good} == {"stored"}
    result = wait_dead_lettered(client, keys["submit"], bad)
    assert [a["error_code"] for a in result["attempts"]] == ["InjectedFault"] * 2


def test_a_dead_letter_shows_every_attempt_and_only_a_masked_application(client, keys):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)

    found = letter(client, keys["read"], bad)

    assert found["status"] == "open" and found["error_code"] == "InjectedFault"
    assert [a["attempt"] for a in found["attempts"]] == [1, 2]
    assert found["application"]["applicant"]["ssn"] == "***-**-6789"
    assert "123-45-6789" not in str(found) and "1985-12-10" not in str(found)


def test_dead_letters_are_found_by_error_channel_and_external_id(client, keys):
    tag = uuid.uuid4().hex[:8]
    bad = poison(client, keys, tag)
    wait_dead_lettered(client, keys["submit"], bad)

    def ids(**params: str) -> list[str]:
        answer = client.get("/v1/dead-letters", params=params, headers=auth(keys["read"]))
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert bad in ids(error_code="InjectedFault", channel="web")
    assert ids(q=MARKER + tag) == [bad]
    assert ids(q=bad) == [bad]
    assert bad not in ids(channel="broker")


def test_replay_with_a_correction_stores_it_under_the_same_id_and_is_audited(
    client, keys, operator
):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)
    corrected = sample_application(external_id="fixed-" + bad[:8])

    answer = client.post(f"/v1/dead-letters/{bad}/replay", json={"application": corrected},
                         headers=auth(operator))

    assert answer.status_code == 202, answer.text
    result = wait_for_status(client, keys["submit"], bad)
    assert result["status"] == "stored" and result["external_id"] == "fixed-" + bad[:8]
    assert letter(client, keys["read"], bad)["status"] == "replayed"
    audit = client.get("/v1/audit", headers=auth(keys["read"])).json()["items"]
    entry = next(e for e in audit if e["target"] == bad)
    assert entry["action"] == "replay" and entry["actor"] == operator.split("_")[1]
    assert entry["detail"]["corrected"] is True
    assert "123-45-6789" not in str(entry)


def test_a_correction_is_validated_like_a_new_application(client, keys, operator):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)

    answer = client.post(f"/v1/dead-letters/{bad}/replay",
                         json={"application": sample_application(channel="fax")},
                         headers=auth(operator))

    assert answer.status_code == 422
    assert letter(client, keys["read"], bad)["status"] == "open"


def test_a_replay_that_fails_again_reopens_the_dead_letter(client, keys, operator):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)
    first = letter(client, keys["read"], bad)["dead_lettered_at"]

    client.post(f"/v1/dead-letters/{bad}/replay", headers=auth(operator))

    deadline = time.monotonic() + 15
    while (found := letter(client, keys["read"], bad))["dead_lettered_at"] == first:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    assert found["status"] == "open"


def test_discard_needs_a_reason_and_is_final(client, keys, operator):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)

    no_reason = client.post(f"/v1/dead-letters/{bad}/discard", json={"reason": " "},
                            headers=auth(operator))
    discarded = client.post(f"/v1/dead-letters/{bad}/discard",
                            json={"reason": "duplicate of a phone application"},
                            headers=auth(operator))
    replay_after = client.post(f"/v1/dead-letters/{bad}/replay", headers=auth(operator))

    assert no_reason.status_code == 400
    assert discarded.status_code == 200
    assert replay_after.status_code == 409
    assert wait_for_status(client, keys["submit"], bad)["status"] == "discarded"


def test_review_actions_need_the_operate_scope(client, keys):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)

    answer = client.post(f"/v1/dead-letters/{bad}/replay", headers=auth(keys["read"]))

    assert answer.status_code == 403
    assert letter(client, keys["read"], bad)["status"] == "open"


def test_bulk_discard_by_filter_counts_first_then_acts(client, keys, operator):
    partner = "partner-" + uuid.uuid4().hex[:6]
    ids = []
    for _ in range(3):
        body = sample_application(external_id=MARKER + uuid.uuid4().hex[:6], partner_id=partner)
        ids.append(submit(client, keys["submit"], body).json()["id"])
    for app_id in ids:
        wait_dead_lettered(client, keys["submit"], app_id)
    request = {"filter": {"partner_id": partner}, "reason": "partner test traffic"}

    dry = client.post("/v1/dead-letters/discard", json={**request, "dry_run": True},
                      headers=auth(operator))
    done = client.post("/v1/dead-letters/discard", json={**request, "dry_run": False},
                       headers=auth(operator))

    assert dry.json()["count"] == 3
    assert done.json()["count"] == 3
    assert {letter(client, keys["read"], i)["status"] for i in ids} == {"discarded"}


def test_a_new_dead_letter_raises_the_dead_letter_alert_for_the_banner(client, keys):
    bad = poison(client, keys)
    wait_dead_lettered(client, keys["submit"], bad)

    assert client.get("/v1/alerts").status_code == 401
    deadline = time.monotonic() + 10  # until the metrics flush reaches the series
    while True:
        answer = client.get("/v1/alerts", headers=auth(keys["read"]))
        assert answer.status_code == 200, answer.text
        found = {a["name"]: a for a in answer.json()["alerts"]}
        if "LoanflowDeadLettersGrowing" in found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    alert = found["LoanflowDeadLettersGrowing"]
    assert alert["severity"] == "warning"
    assert re.fullmatch(r"Dead letters grew by \d+ in 15 minutes", alert["summary"])
    assert "LoanflowBackendDown" not in found
