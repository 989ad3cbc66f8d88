"""`loanflow dead-letters …`: the manual review from a terminal, audited as the CLI user."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import ServerProcess, cli, create_key, sample_application, wait_for_status

pytestmark = pytest.mark.slow


def test_list_show_replay_and_discard_from_the_terminal(tmp_path):
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, fail_marker="POISON-", max_attempts="1").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            ids = [submit(client, key, sample_application(external_id=f"POISON-{i}"))
                   .json()["id"] for i in range(2)]
            for app_id in ids:
                assert wait_for_status(client, key, app_id)["status"] == "dead_lettered"

            listed = json.loads(cli(tmp_path, "dead-letters", "list"))
            shown = json.loads(cli(tmp_path, "dead-letters", "show", ids[0]))
            fixed = tmp_path / "fixed.json"
            fixed.write_text(json.dumps(sample_application(external_id="fixed-0")))
            cli(tmp_path, "dead-letters", "replay", ids[0], "--file", str(fixed))
            cli(tmp_path, "dead-letters", "discard", ids[1], "--reason", "test traffic")
            replayed = wait_for_status(client, key, ids[0])
            discarded = wait_for_status(client, key, ids[1])
            audit = client.get("/v1/audit", headers={"Authorization": f"Bearer {key}"}).json()
    finally:
        server.stop()

    assert {item["id"] for item in listed} == set(ids)
    assert shown["error_code"] == "InjectedFault"
    assert shown["application"]["applicant"]["ssn"] == "***-**-6789"
    assert replayed["status"] == "stored" and replayed["external_id"] == "fixed-0"
    assert discarded["status"] == "discarded"
    actors = {entry["actor"] for entry in audit["items"]}
    assert len(actors) == 1 and actors.pop().startswith("cli:")
