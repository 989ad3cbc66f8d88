"""schemathesis against /openapi.json: no 5xx, every answer as the document says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
])


def test_generated_requests_find_no_server_error_and_no_schema_breach(server: ServerProcess,
                                                                        keys):
    done = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
         "-H", f"Authorization: Bearer {keys['submit']}",
         "--checks", CHECKS, "--phases", "coverage,fuzzing",
         "--max-examples", "40", "--max-time", "15", "--workers", "2",
         "--seed", "20261125"],
        capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 0, done.stdout[-4000:]
    assert "passed" in done.stdout
