"""The GIL switch interval: shortened where SQLite threads share the process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from loanflow.process.gil import EMBEDDED_SWITCH_INTERVAL_S, tune_switch_interval
from loanflow.settings import Settings


@pytest.fixture(autouse=True)
def restore_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_embedded_mode_shortens_the_switch_interval() -> None:
    sys.setswitchinterval(0.005)
    tune_switch_interval(Settings())

    assert sys.getswitchinterval() == pytest.approx(EMBEDDED_SWITCH_INTERVAL_S)


def test_production_mode_keeps_the_interpreter_default() -> None:
    sys.setswitchinterval(0.005)
    tune_switch_interval(Settings(broker_url="redis://127.0.0.1:6379/0",
                                  store_url="postgresql://127.0.0.1/loanflow"))

    assert sys.getswitchinterval() == pytest.approx(0.005)
