"""The `loanflow` command: keys on a fresh data dir, serve's first-start announcement."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import LOANFLOW, ServerProcess, cli, sample_application

#: Every test runs the `loanflow` command in a process of its own: the slow tier.
pytestmark = pytest.mark.slow

KEY = re.compile(r"lf_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def test_keys_create_on_a_fresh_data_dir_prints_the_key_last(tmp_path):
    out = cli(tmp_path / "fresh", "keys", "create", "--scopes", "submit,read", "--label", "web")

    assert KEY.fullmatch(out.strip().splitlines()[-1])


def test_keys_create_refuses_an_unknown_scope(tmp_path):
    done = subprocess.run([*LOANFLOW, "keys", "create", "--scopes", "submit,fly",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True)

    assert done.returncode == 2
    assert "'fly'" in done.stderr


def test_keys_list_shows_ids_and_scopes_never_secrets(tmp_path):
    secret = cli(tmp_path, "keys", "create", "--scopes", "read").strip().splitlines()[-1]

    listing = cli(tmp_path, "keys", "list")

    key_id = secret.split("_")[1]
    assert key_id in listing and "read" in listing
    assert secret not in listing


def test_keys_create_binds_a_partner_and_a_limit_and_list_shows_them(tmp_path):
    created = cli(tmp_path, "keys", "create", "--scopes", "submit", "--partner-id", "acme",
                  "--rate-limit", "2.5", "--label", "Acme Brokers")

    listing = cli(tmp_path, "keys", "list")

    assert "partner acme, 2.5/s, burst 3" in created  # a burst of one second's worth
    key_id = created.strip().splitlines()[-1].split("_")[1]
    [line] = [line for line in listing.splitlines() if line.startswith(key_id)]
    assert line.split("\t")[3:] == ["partner acme; 2.5/s; burst 3", "Acme Brokers"]


@pytest.mark.parametrize(("flags", "named"), [
    (["--burst", "0"], "burst >= 1"),
    (["--rate-limit", "-1"], "rate limit >= 0"),
    (["--rate-limit", "nan"], "rate limit >= 0"),
    (["--partner-id", " acme"], "partner id"),
    (["--partner-id", "x" * 101], "partner id"),
])
def test_keys_create_refuses_bad_terms_and_creates_nothing(tmp_path, flags, named):
    done = subprocess.run([*LOANFLOW, "keys", "create", *flags, "--data-dir", str(tmp_path)],
                          capture_output=True, text=True)

    assert done.returncode == 2
    assert named in done.stderr
    assert cli(tmp_path, "keys", "list").strip() == ""


def test_a_revoked_key_is_refused(tmp_path):
    secret = cli(tmp_path, "keys", "create", "--scopes", "submit").strip().splitlines()[-1]
    server = ServerProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            before = submit(client, secret, sample_application())
            cli(tmp_path, "keys", "revoke", secret.split("_")[1])
            # The API trusts a key lookup for at most 5 s (auth.CACHE_TTL_S).
            server.stop()
            server.start()
            after = submit(client, secret, sample_application())
    finally:
        server.stop()

    assert before.status_code == 202
    assert after.status_code == 401


def test_serve_prints_a_working_key_and_a_one_time_dashboard_code_on_first_start(tmp_path):
    server = ServerProcess(tmp_path).start()
    try:
        printed = server.log_path.read_text()
        [key] = re.findall(r"API key .*: (lf_\S+)", printed)
        [dashboard] = [line for line in printed.splitlines() if line.startswith("Dashboard:")]
        [code] = re.findall(rf"Dashboard: {re.escape(server.url)}/#code=(lc_\S+)", dashboard)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            accepted = submit(client, key, sample_application())
            signed_in = client.post("/login", data={"token": code})
            scopes = client.get("/v1/session").json()["scopes"]
    finally:
        server.stop()

    assert accepted.status_code == 202
    assert "lf_" not in dashboard  # never a key in a link
    assert signed_in.headers["location"] == "/"
    assert scopes == ["operate", "read"]


def test_login_code_prints_a_fresh_code_last_each_working_once(tmp_path):
    server = ServerProcess(tmp_path).start()
    try:
        first, second = (cli(tmp_path, "login-code").strip().splitlines()[-1] for _ in "12")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.post("/login", data={"token": code}).headers["location"]
                       for code in (first, second, first)]
    finally:
        server.stop()

    assert first != second
    assert answers == ["/", "/", "/?failed=used"]


def test_a_login_code_made_with_the_admin_scope_opens_an_admin_session(tmp_path):
    server = ServerProcess(tmp_path).start()
    try:
        code = cli(tmp_path, "login-code", "--scopes", "read,admin").strip().splitlines()[-1]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            client.post("/login", data={"token": code})
            scopes = client.get("/v1/session").json()["scopes"]
            keys = client.get("/v1/keys")
    finally:
        server.stop()

    assert sorted(scopes) == ["admin", "read"]
    assert keys.status_code == 200


@pytest.mark.parametrize(("scopes", "named"), [("read,fly", "'fly'"), ("read,submit", "submit")])
def test_login_code_refuses_an_unknown_scope_or_submit(tmp_path, scopes, named):
    done = subprocess.run([*LOANFLOW, "login-code", "--scopes", scopes,
                           "--data-dir", str(tmp_path)], capture_output=True, text=True)

    assert done.returncode == 2
    assert named in done.stderr
    assert "lc_" not in done.stdout


def test_serve_prints_no_new_key_on_later_starts(tmp_path):
    ServerProcess(tmp_path).start().stop()
    second = ServerProcess(tmp_path).start()
    second.stop()

    assert "API key" not in second.log_path.read_text()
