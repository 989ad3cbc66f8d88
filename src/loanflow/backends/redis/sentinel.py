"""`redis+sentinel://` broker URLs: the primary is found through Redis Sentinel.

    redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE_NAME[/DB]

The hosts are Sentinels; SERVICE_NAME is the name they monitor the primary
under (`sentinel monitor SERVICE_NAME …`); USER and PASSWORD are the data
nodes' (primary and replicas), not the Sentinels'. The client asks the
Sentinels for the primary on every new connection and drops idle connections
when it moved (redis-py's SentinelConnectionPool, `patches/redis_pool.py`), so
after a failover every Redis service of the process follows the new primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

SCHEME = "redis+sentinel"
FORM = f"{SCHEME}://HOST:PORT[,HOST:PORT…]/SERVICE_NAME[/DB]"


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def redacted(self) -> str:
        hosts = ",".join(f"{_host(h)}:{p}" for h, p in self.sentinels)
        return f"{SCHEME}://{hosts}/{self.service_name}/{self.db}"


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() == SCHEME


def parse(url: str) -> SentinelTarget:
    """The target of a `redis+sentinel://` URL; ValueError ("expected …, got …") naming
    what is wrong, never the password."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != SCHEME or not sep:
        raise ValueError(f"expected {FORM}, got {scheme}://…")
    rest = rest.partition("?")[0].partition("#")[0]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_address(part) for part in hosts.split(","))
    service, _, db_text = path.partition("/")
    if not service:
        raise ValueError(f"expected {FORM}: the service name is missing")
    db_text = db_text.rstrip("/")
    if db_text and not (db_text.isascii() and db_text.isdigit()):
        raise ValueError(f"expected {FORM}: the database is a number, got {db_text!r}")
    return SentinelTarget(sentinels, unquote(service), int(db_text or 0), username, password)


def _address(part: str) -> tuple[str, int]:
    host, colon, port = part.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 literal
    if not colon or not host:
        raise ValueError(f"expected {FORM}: each Sentinel as HOST:PORT, got {part!r}")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"expected {FORM}: a port from 1 to 65535, got {port!r}")
    return host, int(port)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
