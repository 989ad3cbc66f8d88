"""Logs are JSON lines with request ids, and never hold a submitted SSN or birth date."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import ServerProcess, create_key, sample_application, wait_for_status

#: Starts `loanflow serve`: the slow tier.
pytestmark = pytest.mark.slow


def test_logs_are_json_and_hold_no_ssn_or_birth_date(tmp_path):
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, log_level="debug").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            accepted = submit(client, key, sample_application())
            submit(client, key, sample_application(applicant__ssn="666-12-3456"))
            submit(client, key, sample_application(applicant__ssn="12"))  # 422
            wait_for_status(client, key, accepted.json()["id"])
    finally:
        server.stop()

    lines = server.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert entries and all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    text = "\n".join(lines)
    for secret in ("123-45-6789", "123456789", "666-12-3456", "1985-12-10"):
        assert secret not in text


def test_answers_carry_a_request_id_and_keep_a_sane_client_one(client):
    generated = client.get("/healthz")
    kept = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    forged = client.get("/healthz", headers={"X-Request-Id": "x\" injected"})

    assert len(generated.headers["x-request-id"]) == 16
    assert kept.headers["x-request-id"] == "abc-123"
    assert forged.headers["x-request-id"] != "x\" injected"
