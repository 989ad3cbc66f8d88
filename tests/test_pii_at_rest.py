"""After a load run, no SSN or birth date in clear: not in logs, answers, or any file on disk."""

from __future__ import annotations

import json
import random
import uuid

import httpx
import pytest

from loanflow.loadgen.synthetic import generate
from tests.conftest import ServerProcess, auth, create_key, wait_for_status

pytestmark = pytest.mark.slow


def test_no_ssn_or_birth_date_in_clear_anywhere_after_a_load_run(tmp_path):
    rng = random.Random(7)
    applications = [generate(rng) for _ in range(200)]
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
    finally:
        server.stop()

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "store.db" for p in files)
    haystacks = {str(p): p.read_bytes() for p in files}
    haystacks["answers"] = "\n".join(answers).encode()
    leaks = [(where, s) for where, data in haystacks.items() for s in secrets
             if s.encode() in data]
    assert leaks == []
