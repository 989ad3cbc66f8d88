"""`WS /v1/live`: authenticated, snapshots at 2 Hz or more, oversized frames refused."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import ServerProcess


def ws_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/v1/live"


def test_the_live_feed_sends_at_least_two_snapshots_a_second(server, keys):
    with connect(ws_url(server), additional_headers={
            "Authorization": f"Bearer {keys['read']}"}, open_timeout=10) as ws:
        started, snapshots = time.monotonic(), 0
        while time.monotonic() - started < 2.0:
            message = json.loads(ws.recv(timeout=5))
            snapshots += message["type"] == "snapshot"

    assert snapshots >= 4


def test_the_live_feed_refuses_a_client_without_a_key(server):
    with pytest.raises((ConnectionClosed, InvalidStatus)), connect(ws_url(server)) as ws:
        ws.recv(timeout=5)


def test_a_frame_over_64_kib_closes_the_socket(server, keys):
    with connect(ws_url(server), additional_headers={
            "Authorization": f"Bearer {keys['read']}"}, max_size=None) as ws:
        ws.send("x" * (65 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.recv(timeout=5)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
