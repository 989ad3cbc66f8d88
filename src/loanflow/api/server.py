"""How every loanflow HTTP server runs, one process or several: uvicorn's options and
its HTTP protocol (patches/uvicorn_protocol.py), refusing an oversized head in
problem+json."""

from __future__ import annotations

from typing import Any

import msgspec

from loanflow.api.problems import PROBLEM_JSON, TYPE_BASE
from loanflow.errors import HeadersTooLarge
from loanflow.patches.uvicorn_protocol import GuardedHttpToolsProtocol
from loanflow.settings import Settings

#: The live feed only ever receives tiny frames; a bigger one closes the socket (1009).
WS_MAX_FRAME_BYTES = 64 * 1024

_PROBLEM_JSON = PROBLEM_JSON.encode()


class HttpProtocol(GuardedHttpToolsProtocol):
    """The protocol every server runs: the patched one, its 431 in problem+json."""

    def refusal(self, detail: str) -> tuple[bytes, bytes]:
        return _PROBLEM_JSON, msgspec.json.encode({
            "type": TYPE_BASE + HeadersTooLarge.type, "title": HeadersTooLarge.title,
            "status": HeadersTooLarge.status, "detail": detail,
        })


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every loanflow HTTP server runs, one process or several."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": HttpProtocol,
        "limit_concurrency": settings.max_connections,
        "ws_max_size": WS_MAX_FRAME_BYTES,
        "lifespan": "on",
        "access_log": False,
        "log_config": None,  # keep our JSON handler for uvicorn's own messages
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 10,
        # uvicorn's 5 s closed pooled connections between a client's bursts; a request
        # sent as the server closed one was lost in the reset (4 in the bench's 5-min
        # soak), as behind a load balancer whose idle timeout outlasts the server's.
        "timeout_keep_alive": settings.keep_alive_s,
        # Forwarded headers only from the proxies the operator named: uvicorn's default
        # believes 127.0.0.1, so any local client could claim https or another address.
        "proxy_headers": bool(settings.trusted_proxy_list),
        "forwarded_allow_ips": settings.trusted_proxy_list or None,
    }
