"""Velocity flags: one email, phone or client IP in more applications than a limit
within a sliding window, counted across every process and host.

Values are compared by keyed hash, never in clear, after normalising them (email
lower-cased, phone in E.164, IP in canonical form). An observation is keyed by the
application id, so a redelivery (delivery is at least once) counts once; it is timed
by the application's `received_at`, so a backlog is judged by when applications
arrived, not when they were processed. An application counts the peers received
before it (or at the same microsecond), never later ones processed first.

The counters (`velocity_sqlite.py`, `backends/redis/velocity.py`) hold derived data, not a
record: each application's flags and counts are stored with its result, and losing
the counters only means the next window's flags see fewer applications.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import msgspec
import phonenumbers

from loanflow.domain.flags import (
    FLAG_EMAIL_VELOCITY,
    FLAG_IP_VELOCITY,
    FLAG_PHONE_VELOCITY,
    NO_FINDINGS,
    Findings,
)
from loanflow.domain.rules import parse_phone
from loanflow.domain.trace import TraceEntry, TraceValue
from loanflow.errors import Unavailable
from loanflow.models import Application, Envelope

#: Observations are kept this many windows, so an application that waited up to one
#: window in a backlog still sees every peer in its own window.
KEEP_WINDOWS: Final = 2
#: Channels whose client IP is the applicant's own: partners, brokers, branches and call
#: centres submit many applicants' applications from one address.
IP_CHANNELS: Final = frozenset({"web", "mobile"})
#: Hex digits of the keyed hash kept in a counter key (128 bits: no collisions in practice).
HASH_HEX_DIGITS: Final = 32


class VelocityUnavailable(Unavailable):
    """The velocity counter cannot be reached; the batch waits in the broker."""

    type = "velocity-unavailable"


class Observation(msgspec.Struct, frozen=True):
    """One application seen with one value: `key` is `<dimension>:<keyed hash>`."""

    key: str
    application_id: str
    #: The application's received_at, in µs (a Redis score holds it exactly until 2255).
    at_us: int


class VelocityCounter(Protocol):
    """Where observations are counted. SQLite and Redis pass the same tests."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def observe(
        self, observations: Sequence[Observation], *, window_us: int, now_us: int
    ) -> list[int]:
        """Record each observation once per (key, application id), however often it comes
        again, and return for each how many distinct applications with its key were
        received in (at_us - window_us, at_us], itself included. One round trip per call.
        Observations older than now_us - KEEP_WINDOWS * window_us may be forgotten.
        Raises VelocityUnavailable when the backend cannot be reached."""
        ...


def normal_email(email: str) -> str:
    return email.strip().lower()


def normal_phone(phone: str) -> str | None:
    """E.164 (`+14155550100`); None when it is no phone number (the rules reject it)."""
    try:
        number = parse_phone(phone)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normal_ip(client_ip: str | None) -> str | None:
    """The canonical address; None unless globally routable: loopback, private and
    reserved addresses belong to a proxy, a test client or a private network, and
    counting them would flag everyone behind it."""
    if not client_ip:
        return None
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed if address.is_global else None


def _email(envelope: Envelope, application: Application) -> str | None:
    return normal_email(application.applicant.email)


def _phone(envelope: Envelope, application: Application) -> str | None:
    return normal_phone(application.applicant.phone)


def _client_ip(envelope: Envelope, application: Application) -> str | None:
    return normal_ip(envelope.client_ip) if envelope.channel in IP_CHANNELS else None


@dataclass(frozen=True, slots=True)
class _Dimension:
    name: str
    flag: str
    limit: int
    value_of: Callable[[Envelope, Application], str | None]


class VelocityCheck:
    """Observes each application's email, phone and client IP; flags those over a limit."""

    def __init__(
        self,
        counter: VelocityCounter,
        *,
        hash_key: bytes,
        limit: int,
        ip_limit: int,
        window_s: float,
    ) -> None:
        if limit < 0 or ip_limit < 0 or not 1 <= window_s < math.inf:
            raise ValueError(
                f"expected velocity limits >= 0 and a window >= 1 s, got limit={limit}, "
                f"ip_limit={ip_limit}, window_s={window_s}"
            )
        self._counter = counter
        # Keyed once: each value's hash copies this state (hmac.digest() sets the key
        # up again on every call, which costs more than hashing a short value).
        self._keyed = hmac.new(hash_key, digestmod="sha256")
        self._window_us = round(window_s * 1_000_000)
        # As given, for the decision trace (its values are ints or strings).
        self._window_s: TraceValue = int(window_s) if window_s == int(window_s) else str(window_s)
        dimensions = (
            _Dimension("email", FLAG_EMAIL_VELOCITY, limit, _email),
            _Dimension("phone", FLAG_PHONE_VELOCITY, limit, _phone),
            _Dimension("client_ip", FLAG_IP_VELOCITY, ip_limit, _client_ip),
        )
        # A limit of 0 turns its dimension off: nothing is hashed, stored or counted.
        self._dimensions = tuple(d for d in dimensions if d.limit > 0)

    def __repr__(self) -> str:
        return f"VelocityCheck(window_us={self._window_us}, {self._counter!r})"

    async def check(
        self, batch: Sequence[tuple[Envelope, Application]], *, now_ns: int
    ) -> dict[str, Findings]:
        """Application id -> its velocity flags and counts, for the whole batch in one call.

        Applications of one batch count each other. Raises VelocityUnavailable.
        """
        seen: list[tuple[str, _Dimension, Observation]] = []
        unique = {envelope.id: (envelope, app) for envelope, app in batch}  # a repeat counts once
        for envelope, application in unique.values():
            at_us = envelope.received_at_ns // 1_000
            for dimension, value in self._values(envelope, application):
                key = f"{dimension.name}:{self._hash(value)}"
                seen.append((envelope.id, dimension, Observation(key, envelope.id, at_us)))
        if not seen:
            return {}
        counts = await self._counter.observe(
            [observation for _, _, observation in seen],
            window_us=self._window_us,
            now_us=now_ns // 1_000,
        )
        found: dict[str, Findings] = {}
        for (application_id, dimension, _), count in zip(seen, counts, strict=True):
            over = count > dimension.limit
            evidence = TraceEntry(
                name=f"velocity_{dimension.name}_count",
                value=count,
                inputs={"limit": dimension.limit, "window_s": self._window_s},
            )
            finding = Findings(flags=(dimension.flag,) if over else (), evidence=(evidence,))
            found[application_id] = found.get(application_id, NO_FINDINGS) + finding
        return found

    def _values(
        self, envelope: Envelope, application: Application
    ) -> list[tuple[_Dimension, str]]:
        found = ((d, d.value_of(envelope, application)) for d in self._dimensions)
        return [(dimension, value) for dimension, value in found if value]

    def _hash(self, value: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(value.encode())
        return keyed.hexdigest()[:HASH_HEX_DIGITS]
