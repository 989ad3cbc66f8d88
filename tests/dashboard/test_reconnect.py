"""After a server restart the page reconnects by itself and says so meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, create_key
from tests.dashboard.browser import Recorder, log_in


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own: stopping it must not disturb the other tests."""
    srv = ServerProcess(tmp_path).start()
    yield srv
    srv.stop()


def test_the_feed_reconnects_by_itself_after_a_server_restart(
    restartable: ServerProcess, page, recorder: Recorder
):
    log_in(page, restartable.url, create_key(restartable.deployment, "read"))
    page.wait_for_selector("#conn[data-state=live]")

    restartable.stop()
    page.wait_for_selector("#conn[data-state=reconnecting]")
    page.wait_for_selector("#banner:has-text('Reconnecting by itself')")
    restartable.start()  # same port, same data directory: the session cookie still holds

    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_selector("#banner", state="hidden")
    assert recorder.page_errors == []
