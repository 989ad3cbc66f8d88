"""The session cookie is `Secure` when the client's scheme was https, and a forwarded
scheme is believed only from a proxy in LOANFLOW_TRUSTED_PROXIES."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess, create_key


@pytest.fixture(scope="module", params=["127.0.0.1", "", "10.9.8.7"],
                ids=["trusted", "none-trusted", "another-trusted"])
def proxied(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ServerProcess, str, bool]]:
    """(server, read key, whether this test client is a trusted proxy)."""
    srv = ServerProcess(tmp_path_factory.mktemp("proxy"), trusted_proxies=request.param)
    srv.start()
    yield srv, create_key(srv.deployment, "read"), request.param == "127.0.0.1"
    srv.stop()


def sign_in_cookie(server: ServerProcess, key: str, **headers: str) -> str:
    answer = httpx.post(server.url + "/login", data={"token": key}, headers=headers, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    return answer.headers["set-cookie"]


def test_an_https_sign_in_gets_a_secure_cookie_only_through_a_trusted_proxy(proxied):
    server, key, trusted = proxied

    cookie = sign_in_cookie(server, key, **{"X-Forwarded-Proto": "https",
                                            "X-Forwarded-For": "203.0.113.7"})

    assert ("; secure" in cookie.lower()) is trusted


def test_a_plain_http_sign_in_gets_no_secure_cookie(proxied):
    server, key, _ = proxied

    assert "secure" not in sign_in_cookie(server, key).lower()
    assert "secure" not in sign_in_cookie(server, key, **{"X-Forwarded-Proto": "http"}).lower()
