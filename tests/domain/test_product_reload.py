"""The product configuration follows its file without a restart; a bad edit never stops work."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from loanflow.domain.product import (
    RELOAD_CHECK_INTERVAL_S,
    ProductConfigError,
    ProductSource,
    load_product,
    packaged_product_path,
)

PACKAGED_TOML = (
    Path(__file__).parents[2] / "src" / "loanflow" / "domain" / "product.toml"
).read_text()
VERSION_LINE = 'version = "personal-loan-2026.1"'
LOGGER = "loanflow.domain.product"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += RELOAD_CHECK_INTERVAL_S


def edited(*, version: str = "personal-loan-2026.2", apr_a: int = 899) -> str:
    return PACKAGED_TOML.replace(VERSION_LINE, f'version = "{version}"').replace(
        "A = 799", f"A = {apr_a}"
    )


def write(path: Path, text: str) -> None:
    """Replace the file the way editors and config tools do: a new file renamed over it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def product_file(tmp_path: Path) -> Path:
    path = tmp_path / "product.toml"
    path.write_text(PACKAGED_TOML)
    return path


def test_an_edit_is_in_force_after_the_next_check(product_file: Path, clock: FakeClock) -> None:
    source = ProductSource.from_file(product_file, clock=clock)
    assert source.current().apr_bps.A == 799

    write(product_file, edited(apr_a=899))
    clock.tick()

    assert source.current().apr_bps.A == 899
    assert source.current().version == "personal-loan-2026.2"


def test_an_edit_in_place_is_seen_too(product_file: Path, clock: FakeClock) -> None:
    source = ProductSource.from_file(product_file, clock=clock)

    product_file.write_text(edited(apr_a=899))
    clock.tick()

    assert source.current().apr_bps.A == 899


def test_the_file_is_not_looked_at_again_within_the_check_interval(
    product_file: Path, clock: FakeClock
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)

    write(product_file, edited())
    clock.now += RELOAD_CHECK_INTERVAL_S / 2

    assert source.current().apr_bps.A == 799


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("version = [unclosed", "Invalid value"),  # not TOML
        (edited().replace("A = 899", "A = 3500"), "non-decreasing"),  # inconsistent
        (edited().replace("[route]", "[route]\nsurprise = 1"), "unknown field"),  # unknown key
        ("", "version"),  # emptied
    ],
    ids=["not-toml", "inconsistent", "unknown-key", "empty"],
)
def test_a_broken_edit_keeps_the_last_good_configuration_and_logs_an_error(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture, broken: str, why: str
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)

    write(product_file, broken)
    clock.tick()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        product = source.current()

    assert product == load_product()
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "keeping version personal-loan-2026.1" in record.getMessage()
    assert why in record.getMessage()


def test_a_refused_edit_is_reported_once_and_a_fixed_one_is_taken(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)
    write(product_file, "version = [unclosed")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(3):
            clock.tick()
            source.current()
    assert len(caplog.records) == 1

    write(product_file, edited(apr_a=899))
    clock.tick()
    assert source.current().apr_bps.A == 899


def test_changed_values_under_the_same_version_are_refused(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Every stored result names the version that priced it: one name, one configuration.
    source = ProductSource.from_file(product_file, clock=clock)

    write(product_file, edited(version="personal-loan-2026.1", apr_a=899))
    clock.tick()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        product = source.current()

    assert product.apr_bps.A == 799
    assert "version is still 'personal-loan-2026.1'" in caplog.text


def test_a_touched_file_with_the_same_content_changes_nothing(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)
    before = source.current()

    write(product_file, PACKAGED_TOML)
    clock.tick()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert source.current() is before
    assert caplog.records == []


def test_a_missing_file_keeps_the_configuration_until_it_is_back(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)

    product_file.unlink()
    clock.tick()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert source.current().apr_bps.A == 799
    assert "cannot be read" in caplog.text

    write(product_file, edited(apr_a=899))
    clock.tick()
    assert source.current().apr_bps.A == 899


def test_a_new_configuration_is_logged_with_both_versions(
    product_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = ProductSource.from_file(product_file, clock=clock)

    write(product_file, edited())
    clock.tick()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        source.current()

    assert "personal-loan-2026.2 loaded" in caplog.text
    assert "(was personal-loan-2026.1)" in caplog.text


def test_a_broken_file_at_start_stops_the_start(product_file: Path) -> None:
    product_file.write_text("version = [unclosed")

    with pytest.raises(ProductConfigError):
        ProductSource.from_file(product_file)


def test_without_a_path_the_packaged_file_is_followed() -> None:
    source = ProductSource.from_file()

    assert source.current() == load_product()
    assert packaged_product_path() == (
        Path(__file__).parents[2] / "src" / "loanflow" / "domain" / "product.toml"
    )
    assert str(packaged_product_path()) in repr(source)


def test_a_fixed_product_is_never_reloaded(clock: FakeClock) -> None:
    product = load_product()
    source = ProductSource(product, clock=clock)

    clock.tick()

    assert source.current() is product
