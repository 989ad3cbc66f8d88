"""docs/deployment.md's HAProxy config is the one fault 13 runs (tests/faults/balancer.py),
but for the test's shorter intervals, TLS and its request log."""

from __future__ import annotations

import re
from pathlib import Path

from tests.faults.balancer import BACKEND, haproxy_config

DOC = Path(__file__).parents[1] / "docs" / "deployment.md"


def section(config: str, header: str) -> list[str]:
    """The directives of `header`'s section, comments and blank lines left out, in order."""
    lines, inside = [], False
    for raw in config.splitlines():
        line = " ".join(raw.split("#", 1)[0].split())
        if raw and not raw[0].isspace():
            inside = line == header
        elif inside and line:
            lines.append(line)
    return lines


def documented_config() -> str:
    [block] = re.findall(r"```haproxy\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return block


def config_under_test() -> str:
    return haproxy_config(listen="127.0.0.1:8080", servers=[("api1", "10.0.0.21:8000")],
                          stats_socket=Path("/run/haproxy/admin.sock"),
                          check_interval="1s", submit_timeout="10s")


def test_the_documented_backend_is_the_tested_one() -> None:
    def without_servers(lines: list[str]) -> list[str]:
        return [line for line in lines if not line.startswith("server ")]

    documented = section(documented_config(), f"backend {BACKEND}")
    assert documented and without_servers(documented) == without_servers(
        section(config_under_test(), f"backend {BACKEND}"))


def test_the_documented_defaults_are_the_tested_ones() -> None:
    tested = [line for line in section(config_under_test(), "defaults") if line != "log global"]
    assert section(documented_config(), "defaults") == tested
