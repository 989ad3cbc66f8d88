"""The production broker: a Redis Stream read through one consumer group.

A 202 here: a group of submissions runs one Lua script (`lua/append.lua`)
taking each one's rate limit, claiming its idempotency key and XADDing its
envelope together: one round trip per group. Scripts are atomic,
and Redis replies only after writing the AOF, fsync'd first with
`appendfsync always` (`everysec`: a crash "may lose the last second"). With
`noeviction` a full Redis refuses the script's first write: nothing is
half-written and the caller gets BrokerUnavailable, never ACCEPTED. Each new
connection checks those settings (`durability.py`). Key layout: `keys.py`.

- Acked entries are deleted, not trimmed (XACK + XDEL in one script): the
  stream holds exactly the unacked work, depth is XLEN + ZCARD(delayed), and
  no XTRIM can ever pass the oldest unacked entry (7.0 has no XTRIM ACKED).
  A processor's acks ride on its next `reserve`, in the same pipeline: one
  round trip and one AOF fsync per batch less (at 500/s, batches of one or
  two: the worker's CPU -15%, Redis's -10 to -18%).
  XDEL tombstones stay until their stream node empties; FIFO makes that soon.
- Streams have no delayed delivery: `retry_later`/`release` take the entry
  back and park the envelope in a sorted set scored by ready time.
- `reserve` is one round trip: a script (`lua/ready.lua`) moves due retries
  back to the stream and re-adds entries whose lease ran out (looked for four
  times per lease), then a plain XREADGROUP hands out the oldest. It never
  blocks: `drain()` needs an empty answer at once. Between reserves
  `wait_for_work` sleeps 10 ms while work flows (the next batch gathers
  meanwhile: waking on each append made batches of one or two, whose extra
  fsyncs in Redis and PostgreSQL raised latency at 500/s). After
  `idle_after_s` without work it blocks instead: XREAD BLOCK for an entry
  after the last one the group handed out, so an append wakes it at once, and
  it looks again after `idle_block_s` for due retries and expired leases
  (polling every 10 ms cost an idle worker 7% of a core).
- Every delivery is of a fresh entry: a retry, a release and an expired lease
  re-add the envelope under a new entry id, whose field `n` carries the
  deliveries before it. The token `<entry id>/<deliveries>` so names one
  delivery, and a holder whose lease ran out cannot hand back, nor ack away,
  what another consumer now holds.
- Every Redis error (connection, timeout, OOM, LOADING, ...) becomes
  BrokerUnavailable, and so does uvloop's RuntimeError for a closed
  connection. An append whose reply was lost is settled by the caller's
  retry with the same key.
- With `min_replicas` N > 0 (LOANFLOW_REDIS_MIN_REPLICAS), an append's script
  is followed in the same round trip by a fence write and `WAIT N wait_ms`:
  fewer confirmations raise BrokerUnavailable (503), and the key stays
  claimed, unconfirmed. A retry with the same key and body finds that claim and
  answers it (202, replayed) only once its own fence is confirmed, so never
  before the original entry reached N replicas; should the primary die first,
  the claim dies with it and the retry makes the one application. Workers
  `WAIT` too before processing what they read: an entry is never stored
  unless it reached N replicas, so a claim lost in a failover never belonged
  to a stored application (no second application for the key). At N = 0
  nothing is added (the lone EVALSHA).
- It runs on the process's one RedisClient (`client.py`: pool, timeouts,
  retry, durability check, a client per event loop), shared with the other
  Redis services; `from_url` makes a broker with a client of its own.
- Each idempotency key is one compact string (`idempotency.py`) set with the
  window as its TTL (`idempotency_window_s`, 24 h unless set), so
  `expire_idempotency_keys()` returns 0: Redis forgets keys. Given `now_ns` (a
  simulated clock) it sweeps by age.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from loanflow.backends.redis import idempotency, keys
from loanflow.backends.redis.client import (
    CONNECT_TIMEOUT_S,
    MAX_CONNECTIONS,
    SOCKET_TIMEOUT_S,
    RedisClient,
    Script,
)
from loanflow.backends.redis.durability import refused_unless_durable
from loanflow.backends.redis.errors import unavailable_as
from loanflow.broker.activity import IDLE_AFTER_S, Activity
from loanflow.broker.base import (
    IDEMPOTENCY_TTL_S,
    AppendOutcome,
    AppendResult,
    Delivery,
    Submission,
)
from loanflow.errors import BrokerUnavailable
from loanflow.models import Envelope, envelope_key_id

log = logging.getLogger(__name__)

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode

SCRIPT_NAMES = (
    "append", "ready", "ack", "hand_back", "pending_state", "expire_keys", "requeue",
)
#: A consumer's pause between reserves while work flows.
BUSY_POLL_S = 0.01
#: Longest wait of an idle consumer: how late it may see a due retry or an expired lease.
IDLE_BLOCK_S = 0.1
#: Share of the lease between two looks for expired leases (a look scans the pending list).
LEASE_SCAN_FRACTION = 0.25
#: How long an append or a read waits for its replicas (LOANFLOW_REDIS_WAIT_MS).
REPLICA_WAIT_MS = 100
#: Idempotency keys a sweep (`expire_idempotency_keys(now_ns=...)`) checks per script call.
SWEEP_BATCH = 500
#: Entries `sealed_key_counts` reads per round trip.
SCAN_BATCH = 1000


@functools.cache
def _script(name: str) -> Script:
    return Script.of(
        resources.files("loanflow.backends.redis").joinpath(f"lua/{name}.lua").read_text()
    )


_Call = tuple[Script, Sequence[str | bytes], Sequence[str | bytes | int | float]]
#: ("WAIT", replicas, timeout ms)
_Wait = tuple[str, int, int]


class RedisStreamsBroker:
    def __init__(
        self,
        client: RedisClient,
        *,
        visibility_timeout_s: float,
        idle_block_s: float = IDLE_BLOCK_S,
        idle_after_s: float = IDLE_AFTER_S,
        idempotency_window_s: int = IDEMPOTENCY_TTL_S,
        min_replicas: int = 0,
        replica_wait_ms: int = REPLICA_WAIT_MS,
    ) -> None:
        if visibility_timeout_s <= 0:
            raise ValueError(f"expected visibility_timeout_s > 0, got {visibility_timeout_s}")
        if not 0 < idle_block_s < client.socket_timeout_s:
            raise ValueError(f"expected 0 < idle_block_s < socket_timeout_s, got {idle_block_s}")
        if idempotency_window_s < 1:
            raise ValueError(f"expected idempotency_window_s >= 1, got {idempotency_window_s}")
        self._client, self._owns_client = client, False
        self._redis = client.redis  # bound once: the running loop's redis.asyncio client
        self._window_s = idempotency_window_s
        if min_replicas < 0 or replica_wait_ms < 1:
            raise ValueError("expected min_replicas >= 0 and replica_wait_ms >= 1, got"
                             f" {min_replicas} and {replica_wait_ms}")
        #: The command confirming a round trip's writes on N replicas; None: N = 0.
        self._wait: _Wait | None = (
            ("WAIT", min_replicas, replica_wait_ms) if min_replicas else None)
        self._lease_ms = max(1, round(visibility_timeout_s * 1000))
        self._scan_every_s = visibility_timeout_s * LEASE_SCAN_FRACTION
        self._scanned_at = -math.inf  # time.monotonic() of the last look for expired leases
        self._idle_block_ms = max(1, round(idle_block_s * 1000))
        self._activity = Activity(idle_after_s)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        visibility_timeout_s: float,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        idle_block_s: float = IDLE_BLOCK_S,
        idle_after_s: float = IDLE_AFTER_S,
        allow_unsafe: bool = False,
        idempotency_window_s: int = IDEMPOTENCY_TTL_S,
        min_replicas: int = 0,
        replica_wait_ms: int = REPLICA_WAIT_MS,
    ) -> RedisStreamsBroker:
        """A broker with a client of its own, opened and closed with it (tests, tools)."""
        client = RedisClient(url, socket_timeout_s=socket_timeout_s,
                             connect_timeout_s=connect_timeout_s,
                             max_connections=max_connections, allow_unsafe=allow_unsafe)
        broker = cls(client, visibility_timeout_s=visibility_timeout_s,
                     idle_block_s=idle_block_s, idle_after_s=idle_after_s,
                     idempotency_window_s=idempotency_window_s,
                     min_replicas=min_replicas, replica_wait_ms=replica_wait_ms)
        broker._owns_client = True
        return broker

    @property
    def durability(self) -> str:
        return self._client.durability

    def __repr__(self) -> str:
        return f"RedisStreamsBroker({self._client!r})"

    async def open(self) -> None:
        if self._owns_client:
            await self._client.open()
        try:
            redis = self._redis()
            with _unavailable("open"), refused_unless_durable():
                await _ensure_group(redis)
                for name in SCRIPT_NAMES:
                    await redis.script_load(_script(name).text)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def append(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        if not submissions:
            return []
        # One script call for the whole group: one round trip, one AOF fsync, one reply.
        script_keys: list[str | bytes] = [keys.STREAM]
        args: list[str | bytes | int | float] = [self._window_s]
        for s in submissions:
            env, limit = s.envelope, s.rate_limit
            script_keys += [keys.idempotency_key(env.api_key_id, env.idempotency_key),
                            keys.application_key(env.id),
                            keys.RATE_LIMIT_PREFIX + (limit.bucket if limit else env.api_key_id)]
            args += [idempotency.record(s.fingerprint, env.id, env.received_at_ns),
                     env.id, env.received_at_ns, _encode(env),
                     limit.rate_per_s if limit else 0, limit.burst if limit else 0]
        with _unavailable("append"):
            [replies] = await self._run([(_script("append"), script_keys, args)],
                                        confirm=True)
        return [_append_result(s, reply) for s, reply in zip(submissions, replies, strict=True)]

    async def requeue(self, envelopes: Sequence[Envelope]) -> None:
        calls: list[_Call] = [
            (_script("requeue"), [keys.STREAM, keys.application_key(env.id), keys.DELAYED],
             [env.id, env.received_at_ns, _encode(env), keys.GROUP])
            for env in envelopes
        ]
        with _unavailable("requeue"):
            if calls:
                await self._run(calls)

    async def reserve(
        self, max_count: int, *, consumer: str, ack: Sequence[Delivery] = ()
    ) -> list[Delivery]:
        if max_count < 1:
            await self.ack(ack)
            return []
        now = time.monotonic()
        scan = now - self._scanned_at >= self._scan_every_s
        # One round trip: the acks, due work made ready, then a plain read (envelopes
        # read through a script cost Redis 4x as much: copied into Lua and out).
        calls = [_ack_call(ack)] if ack else []
        calls.append((
            _script("ready"),
            [keys.STREAM, keys.DELAYED, keys.CLAIM_CURSOR],
            [keys.GROUP, consumer, max_count, self._lease_ms, keys.APPLICATION_PREFIX,
             "1" if scan else "0"],
        ))
        read = ("XREADGROUP", "GROUP", keys.GROUP, consumer, "COUNT", max_count,
                "STREAMS", keys.STREAM, ">")
        with _unavailable("reserve"):
            try:
                *_, rows = await self._run(calls, then=read)
            except ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                # The stream was deleted and an append made it anew (say, a Redis without
                # persistence restarted): without the group nothing is delivered again.
                await _ensure_group(self._redis())
                *_, rows = await self._run(calls, then=read)
        if scan:
            self._scanned_at = now
        entries = rows[0][1] if rows else []
        if entries and self._wait is not None:
            await self._confirm_read(consumer, entries)
        if entries:
            self._activity.worked(consumer)
        return [_delivery(entry, fields) for entry, fields in entries]

    async def wait_for_work(self, consumer: str, *, wake: asyncio.Event | None = None) -> None:
        # `wake` is not needed: every append, from any process, reaches the stream.
        if not self._activity.idle(consumer):
            await asyncio.sleep(BUSY_POLL_S)
            return
        redis = self._redis()
        with _unavailable("wait_for_work"):
            # After the last entry the group handed out: an append since the empty
            # reserve is after it too, so it wakes this read at once.
            groups = await redis.xinfo_groups(keys.STREAM)
            after = next((g["last-delivered-id"] for g in groups
                          if g["name"] == keys.GROUP.encode()), b"$")
            await redis.xread({keys.STREAM: after}, count=1, block=self._idle_block_ms)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        with _unavailable("ack"):
            await self._run([_ack_call(deliveries)])

    async def retry_later(self, delivery: Delivery, envelope: Envelope, delay_s: float) -> None:
        await self._hand_back([(delivery, _encode(envelope))], delay_s, uncount=False)

    async def release(self, deliveries: Sequence[Delivery], delay_s: float) -> None:
        if deliveries:
            await self._hand_back([(d, b"") for d in deliveries], delay_s, uncount=True)

    async def pending_state(self, application_id: str) -> tuple[str, int] | None:
        call: _Call = (_script("pending_state"),
                       [keys.application_key(application_id), keys.STREAM],
                       [keys.GROUP, self._lease_ms])
        with _unavailable("pending_state"):
            [held] = await self._run([call])
        if held is None:
            return None
        state, received_at_ns = held
        return state.decode(), int(received_at_ns)

    async def depth(self) -> int:
        redis = self._redis()
        with _unavailable("depth"):
            async with redis.pipeline(transaction=False) as pipe:
                pipe.xlen(keys.STREAM)
                pipe.zcard(keys.DELAYED)
                ready_or_held, delayed = await pipe.execute()
        return int(ready_or_held) + int(delayed)

    async def sealed_key_counts(self) -> dict[str, int]:
        # Not atomic (a script over the whole queue would hold Redis up): the stream, then
        # the delayed envelopes, then the stream's tail again. An envelope moved from the
        # stream to the delayed set meanwhile is found there, one moved back at the tail.
        redis = self._redis()
        counts: Counter[str] = Counter()
        with _unavailable("sealed_key_counts"):
            last = await _count_stream(redis, "-", counts)
            parked: Any = await redis.zrange(keys.DELAYED, 0, -1)
            delayed: list[bytes] = list(parked)
            for start in range(0, len(delayed), SCAN_BATCH):
                async with redis.pipeline(transaction=False) as pipe:
                    for app_id in delayed[start:start + SCAN_BATCH]:
                        pipe.hget(keys.application_key(app_id.decode()), "env")
                    envelopes = await pipe.execute()
                # None: made ready meanwhile, so in the stream's tail.
                counts.update(envelope_key_id(env) for env in envelopes if env)
            await _count_stream(redis, "-" if last is None else f"({last}", counts)
        return dict(counts)

    async def oldest_wait_s(self) -> float | None:
        redis = self._redis()
        with _unavailable("oldest_wait_s"):
            async with redis.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.xrange(keys.STREAM, count=1)
                (now_s, now_us), head = await pipe.execute()
        if not head:
            return None
        # An entry id is the Redis clock in ms when it was added: compare on that clock.
        added_ms = int(head[0][0].split(b"-")[0])
        return max(0.0, int(now_s) + int(now_us) / 1e6 - added_ms / 1000)

    async def ping(self) -> None:
        redis = self._redis()
        with _unavailable("ping"):
            await redis.ping()

    async def expire_idempotency_keys(self, now_ns: int | None = None) -> int:
        """0 in real time (Redis TTLs forget keys); with `now_ns`, forget keys older than
        the window."""
        if now_ns is None:
            return 0
        cutoff_ns = now_ns - self._window_s * 1_000_000_000
        redis = self._redis()
        forgotten, batch = 0, []
        with _unavailable("expire_idempotency_keys"):
            async for key in redis.scan_iter(match=keys.IDEMPOTENCY_PREFIX + "*", count=1000):
                batch.append(key)
                if len(batch) >= SWEEP_BATCH:
                    forgotten += await self._sweep(batch, cutoff_ns)
                    batch = []
            if batch:
                forgotten += await self._sweep(batch, cutoff_ns)
        return forgotten

    async def _sweep(self, idempotency_keys: list[bytes], cutoff_ns: int) -> int:
        high, low = divmod(max(0, cutoff_ns), 1 << 32)
        [n] = await self._run([(_script("expire_keys"), idempotency_keys, [high, low])])
        return int(n)

    async def _hand_back(
        self, items: Sequence[tuple[Delivery, bytes]], delay_s: float, *, uncount: bool
    ) -> None:
        delay_ms = max(0, round(delay_s * 1000))
        args: list[str | bytes | int] = [
            keys.GROUP, keys.APPLICATION_PREFIX, delay_ms, "1" if uncount else "0"
        ]
        for delivery, envelope in items:
            entry, n = _split_token(delivery.token)
            args += [entry, n, delivery.envelope.id, envelope]
        with _unavailable("retry" if not uncount else "release"):
            await self._run([(_script("hand_back"), [keys.STREAM, keys.DELAYED], args)])

    async def _confirm_read(self, consumer: str, entries: list[Any]) -> None:
        """Whether what a read handed out is on N replicas; if not, it goes back
        uncounted and the read fails (BrokerUnavailable): nothing is stored that a
        failover could take from the broker along with its key's claim."""
        with _unavailable("reserve"):
            [confirmed] = await _evalsha(self._redis(), [], (), self._wait)
        if int(confirmed) >= self._min_replicas:
            return
        deliveries = [_delivery(entry, fields) for entry, fields in entries]
        with contextlib.suppress(BrokerUnavailable):  # else their leases run out
            await self.release(deliveries, 0)
        raise BrokerUnavailable(self._short_of_replicas("reserve", int(confirmed)))

    @property
    def _min_replicas(self) -> int:
        return 0 if self._wait is None else int(self._wait[1])

    def _short_of_replicas(self, action: str, confirmed: int) -> str:
        assert self._wait is not None
        _, wanted, wait_ms = self._wait
        return (f"redis {action}: {confirmed} of {wanted} replicas confirmed within"
                f" {wait_ms} ms (LOANFLOW_REDIS_MIN_REPLICAS)")

    async def _run(self, calls: Sequence[_Call], *, then: tuple[str | int, ...] = (),
                   confirm: bool = False) -> list[Any]:
        """EVALSHA each call, then the command `then` if given, in one round trip (a
        pipeline, no MULTI: each script is atomic). `confirm`: with N > 0 replicas, a
        fence write and WAIT in the same round trip; BrokerUnavailable when fewer confirm
        (what the calls wrote stays written)."""
        redis = self._redis()
        wait = self._wait if confirm else None
        results = await _evalsha(redis, calls, then, wait)
        confirmed = results.pop() if wait is not None else None
        missing = [i for i, r in enumerate(results[:len(calls)]) if isinstance(r, NoScriptError)]
        if missing:
            # Redis restarted and lost its script cache; those calls did not run.
            for script in {calls[i][0] for i in missing}:
                await redis.script_load(script.text)
            # Not `then` again: what it read is handed out; what these make ready waits
            # for the next read.
            again = await _evalsha(redis, [calls[i] for i in missing], (), wait)
            if wait is not None:
                confirmed = again.pop()
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        if isinstance(confirmed, Exception):
            raise confirmed
        if confirmed is not None and int(confirmed) < self._min_replicas:
            raise BrokerUnavailable(self._short_of_replicas("append", int(confirmed)))
        return results


async def _evalsha(redis: Redis, calls: Sequence[_Call], then: tuple[str | int, ...] = (),
                   wait: _Wait | None = None) -> list[Any]:
    """The replies in order, an error as its exception (a pipeline's raise_on_error=False).

    `wait`: a fence write and that WAIT last, its reply (the replicas that confirmed
    every write so far on this connection) the last one. The fence makes the WAIT
    cover everything before it even when the calls wrote nothing (a replay): Redis
    waits for a connection's last write, and its claim may be another's."""
    if len(calls) == 1 and not then and wait is None:
        # A lone call skips the pipeline's own work: a quarter of the client's CPU per call.
        script, script_keys, args = calls[0]
        try:
            return [await redis.evalsha(script.sha, len(script_keys), *script_keys, *args)]
        except ResponseError as exc:  # a connection error propagates, as from a pipeline
            return [exc]
    async with redis.pipeline(transaction=False) as pipe:
        for script, script_keys, args in calls:
            pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
        if then:
            pipe.execute_command(*then)
        if wait is not None:
            pipe.execute_command("SET", keys.REPLICATION_FENCE, b"1")
            pipe.execute_command(*wait)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if wait is not None:
            del results[-2]  # the fence's OK
        return results


async def _count_stream(redis: Redis, start: str, counts: Counter[str]) -> str | None:
    """Count the stream's envelopes from `start` on by key id; the last entry id read."""
    last = None
    while True:
        reply: Any = await redis.xrange(keys.STREAM, min=start, max="+", count=SCAN_BATCH)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = list(reply)
        counts.update(envelope_key_id(fields[b"e"]) for _, fields in entries)
        if entries:
            last = entries[-1][0].decode()
            start = f"({last}"
        if len(entries) < SCAN_BATCH:
            return last


async def _ensure_group(redis: Redis) -> None:
    try:
        await redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(BrokerUnavailable, f"redis {action}")


def _append_result(sub: Submission, reply: list[Any]) -> AppendResult:
    env = sub.envelope
    if reply[0] == 0:  # accepted: the new entry's id
        return AppendResult(AppendOutcome.ACCEPTED, env.id, env.received_at_ns)
    if reply[0] == 2:  # over the rate limit: the wait in ms
        return AppendResult(AppendOutcome.RATE_LIMITED, env.id, env.received_at_ns,
                            retry_after_s=int(reply[1]) / 1000)
    claim = idempotency.prior_claim(sub.fingerprint, reply)
    outcome = AppendOutcome.REPLAYED if claim.same_body else AppendOutcome.KEY_REUSED
    return AppendResult(outcome, claim.application_id, claim.received_at_ns)


def _ack_call(deliveries: Sequence[Delivery]) -> _Call:
    args: list[str | bytes | int] = [keys.GROUP, keys.APPLICATION_PREFIX]
    for d in deliveries:
        args += [_split_token(d.token)[0], d.envelope.id]
    return _script("ack"), [keys.STREAM], args


def _delivery(entry: bytes, fields: dict[bytes, bytes]) -> Delivery:
    """A read entry: fields `id`, `e` (the envelope), `n` (earlier deliveries, if any)."""
    deliveries = int(fields.get(b"n", 0)) + 1
    return Delivery(f"{entry.decode()}/{deliveries}", _decode(fields[b"e"]), deliveries)


def _split_token(token: str) -> tuple[str, str]:
    entry, _, deliveries = token.rpartition("/")
    return entry, deliveries

