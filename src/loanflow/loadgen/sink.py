"""A trivial HTTP/1.1 server answering every request with a canned 202.

It measures the load generator, not a service: whatever rate the generator
holds against the sink is its own ceiling. Requests are framed by httptools'
parser (C), and the answer is one pre-built write. For tests it can also
close the connection after every `close_every`-th answer, announced with
`Connection: close` as a server must, or answer after `delay_s`.

    python -m loanflow.loadgen.sink [--port 0]   # prints "sink listening on PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
from typing import cast

import httptools
import uvloop

BODY = b'{"id":"sink","status":"queued"}'
_HEAD = (b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
         b"content-length: %d\r\n" % len(BODY))
ANSWER = _HEAD + b"\r\n" + BODY
CLOSING_ANSWER = _HEAD + b"connection: close\r\n\r\n" + BODY


@dataclasses.dataclass
class SinkStats:
    requests: int = 0
    connections: int = 0


class _SinkProtocol(asyncio.Protocol):
    def __init__(self, stats: SinkStats, close_every: int, delay_s: float) -> None:
        self.stats, self.close_every, self.delay_s = stats, close_every, delay_s
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        self.stats.requests += 1
        if self.delay_s:
            asyncio.get_running_loop().call_later(self.delay_s, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.answered += 1
        if self.close_every and self.answered % self.close_every == 0:
            self.transport.write(CLOSING_ANSWER)
            self.transport.close()
        else:
            self.transport.write(ANSWER)


async def start_sink(
    host: str = "127.0.0.1", port: int = 0, *, close_every: int = 0, delay_s: float = 0.0,
) -> tuple[asyncio.Server, int, SinkStats]:
    """A listening sink in the running loop: (server, its port, live counters)."""
    stats = SinkStats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _SinkProtocol(stats, close_every, delay_s), host, port, backlog=1024)
    bound_port: int = server.sockets[0].getsockname()[1]
    return server, bound_port, stats


async def _serve(port: int) -> None:
    server, bound, stats = await start_sink(port=port)
    print(f"sink listening on {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"sink answered {stats.requests} requests on {stats.connections} connections",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt), \
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(args.port))


if __name__ == "__main__":
    main()
