"""After a load run, no SSN or birth date in clear: not in logs, answers, or any file on disk."""

from __future__ import annotations

import json
import random
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from loanflow.loadgen.synthetic import generate, make_invalid
from tests.conftest import ServerProcess, auth, create_key, wait_for_status

pytestmark = pytest.mark.slow


def test_no_ssn_or_birth_date_in_clear_anywhere_after_a_load_run(tmp_path):
    rng = random.Random(7)
    applications = [generate(rng) for _ in range(200)]
    # Some break rules, so rejection events (with names and reasons) reach the live log.
    applications += [make_invalid(generate(rng), rng)[0] for _ in range(40)]
    secrets = set()
    for app in applications:
        ssn, dob = app["applicant"]["ssn"], app["applicant"]["date_of_birth"]
        secrets |= {ssn, ssn.replace("-", ""), dob}
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path).start()
    answers: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for app in applications:
                answer = client.post("/v1/applications", json=app, headers=auth(
                    key, **{"Idempotency-Key": str(uuid.uuid4())}))
                assert answer.status_code == 202, answer.text
                answers.append(answer.text)
            for accepted in [json.loads(a) for a in answers]:
                answers.append(json.dumps(wait_for_status(client, key, accepted["id"])))
            # What operators and scrapers see: metrics, the dashboard, the live feed.
            for path in ("/metrics", "/v1/metrics/summary", "/v1/metrics/series?seconds=60",
                         "/v1/dead-letters?status=any", "/"):
                answers.append(client.get(path, headers=auth(key)).text)
            with connect(server.url.replace("http", "ws", 1) + "/v1/live",
                         additional_headers=auth(key)) as ws:
                answers.extend(str(ws.recv(timeout=5)) for _ in range(10))
    finally:
        server.stop()

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "store.db" for p in files)
    haystacks = {str(p): p.read_bytes() for p in files}
    haystacks["answers"] = "\n".join(answers).encode()
    leaks = [(where, s) for where, data in haystacks.items() for s in secrets
             if s.encode() in data]
    assert leaks == []
