"""Settings: LOANFLOW_* variables, flags over variables, secrets kept out of reprs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loanflow.settings import Settings


def test_defaults_match_the_documented_ones() -> None:
    settings = Settings.from_env({})

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path(".loanflow")
    assert settings.max_attempts == 5
    assert settings.embedded


def test_loanflow_variables_are_read_with_their_types() -> None:
    environ = {
        "LOANFLOW_PORT": "9001",
        "LOANFLOW_DATA_DIR": "/var/lib/loanflow",
        "LOANFLOW_VISIBILITY_TIMEOUT_S": "2.5",
        "LOANFLOW_MAX_ATTEMPTS": "7",
        "LOANFLOW_BROKER_URL": "redis://localhost:6379/0",
        "LOANFLOW_PII_KEY": "a-key",
    }

    settings = Settings.from_env(environ)

    assert settings.port == 9001
    assert settings.data_dir == Path("/var/lib/loanflow")
    assert settings.visibility_timeout_s == 2.5
    assert settings.max_attempts == 7
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.pii_key == "a-key"
    assert not settings.embedded


def test_variables_without_the_prefix_are_ignored() -> None:
    assert Settings.from_env({"PORT": "9001", "loanflow_port": "9002"}).port == 8000


def test_empty_variable_keeps_the_default() -> None:
    assert Settings.from_env({"LOANFLOW_PORT": ""}).port == 8000


def test_flags_win_over_variables() -> None:
    settings = Settings.from_env({"LOANFLOW_PORT": "9001"}, port=9100)

    assert settings.port == 9100


def test_flag_not_given_leaves_the_variable() -> None:
    settings = Settings.from_env({"LOANFLOW_PORT": "9001"}, port=None)

    assert settings.port == 9001


def test_bad_int_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LOANFLOW_MAX_ATTEMPTS") as raised:
        Settings.from_env({"LOANFLOW_MAX_ATTEMPTS": "five"})

    assert "five" in str(raised.value)


def test_bad_float_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LOANFLOW_VISIBILITY_TIMEOUT_S"):
        Settings.from_env({"LOANFLOW_VISIBILITY_TIMEOUT_S": "30s"})


@pytest.mark.parametrize(("name", "raw"), [("PROCESSORS", "-2"), ("BACKLOG_LOOPS", "-1")])
def test_a_negative_loop_count_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"LOANFLOW_{name}: expected 0 or more.* got {raw}"):
        Settings.from_env({f"LOANFLOW_{name}": raw})


def test_processors_left_to_the_mode_are_two_embedded_and_one_in_production() -> None:
    production = {"LOANFLOW_BROKER_URL": "redis://127.0.0.1:6379/0",
                  "LOANFLOW_STORE_URL": "postgresql://127.0.0.1/loanflow"}

    assert Settings.from_env({}).processor_count == min(2, os.cpu_count() or 1)
    assert Settings.from_env({"LOANFLOW_PROCESSORS": "-1"}).processor_count == min(
        2, os.cpu_count() or 1)
    assert Settings.from_env(production).processor_count == 1
    assert Settings.from_env({"LOANFLOW_PROCESSORS": "3"}).processor_count == 3
    assert Settings.from_env({**production, "LOANFLOW_PROCESSORS": "0"}).processor_count == 0


def test_idempotency_window_is_24_hours_unless_set() -> None:
    assert Settings.from_env({}).idempotency_window_s == 24 * 3600
    assert Settings.from_env({"LOANFLOW_IDEMPOTENCY_WINDOW_S": "600"}).idempotency_window_s == 600


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_an_idempotency_window_under_a_second_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="LOANFLOW_IDEMPOTENCY_WINDOW_S: expected 1 or more"):
        Settings.from_env({"LOANFLOW_IDEMPOTENCY_WINDOW_S": raw})


def test_repr_does_not_show_the_pii_key() -> None:
    assert "secret" not in repr(Settings(pii_key="secret"))


def test_repr_does_not_show_the_pii_key_read_from_the_environment() -> None:
    assert "s3cr3t-key" not in repr(Settings.from_env({"LOANFLOW_PII_KEY": "s3cr3t-key"}))


def test_repr_does_not_show_the_pinned_hash_key() -> None:
    settings = Settings.from_env({"LOANFLOW_PII_HASH_KEY": "s3cr3t-hash-key"})

    assert settings.pii_hash_key == "s3cr3t-hash-key"
    assert "s3cr3t-hash-key" not in repr(settings)


def test_repr_does_not_show_a_password_in_a_store_url() -> None:
    settings = Settings(store_url="postgresql://loanflow:hunter2@db.internal/loanflow")

    assert "hunter2" not in repr(settings)


def test_trusted_proxies_are_addresses_and_networks_and_none_by_default() -> None:
    settings = Settings.from_env({"LOANFLOW_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16,::1"})

    assert Settings.from_env({}).trusted_proxy_list == []
    assert settings.trusted_proxy_list == ["10.0.0.5", "192.168.0.0/16", "::1"]


@pytest.mark.parametrize("proxies", ["*", "proxy.internal", "10.0.0.1/8"])
def test_a_trusted_proxy_that_is_no_address_or_network_is_refused(proxies: str) -> None:
    with pytest.raises(ValueError, match="LOANFLOW_TRUSTED_PROXIES"):
        Settings.from_env({"LOANFLOW_TRUSTED_PROXIES": proxies})


@pytest.mark.parametrize("raw", ["1", "true", "True", "yes", "on"])
def test_a_switch_is_on_for_the_usual_spellings(raw: str) -> None:
    assert Settings.from_env({"LOANFLOW_UNSAFE_REDIS": raw}).unsafe_redis is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off"])
def test_a_switch_is_off_for_the_usual_spellings(raw: str) -> None:
    assert Settings.from_env({"LOANFLOW_UNSAFE_REDIS": raw}).unsafe_redis is False


def test_unsafe_redis_is_off_unless_asked_for() -> None:
    assert Settings.from_env({}).unsafe_redis is False


def test_a_switch_with_another_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LOANFLOW_UNSAFE_REDIS: expected 1 or 0, got 'maybe'"):
        Settings.from_env({"LOANFLOW_UNSAFE_REDIS": "maybe"})
