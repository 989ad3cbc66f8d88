"""One batch to `POST /v1/applications/batch`, retried until answered or hopeless.

What the service promises decides what is retried (DESIGN "What accepted
promises"): a 5xx, a timeout or a lost connection is "unknown", so the same
body goes again with the same keys and what was already accepted comes back
as a replay. 429 and 503 carry Retry-After: every sender waits that long, not
only the one that was told. 401/403 stop the import: no later batch can do
better. Any other 4xx of the whole request means this client built a wrong
request; it stops too, rather than skip lines silently. A batch still
unanswered after `retry_for_s` of trying stops the import; a rerun resumes.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time

import httpx
import msgspec

BATCH_PATH = "/v1/applications/batch"
#: Exponential backoff with full jitter: up to BASE * 2^attempt, at most CAP.
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 10.0
#: Answers that mean "try again later" (408: the body arrived too slowly).
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


class ImportStopped(Exception):
    """The import cannot go on; the message says why and what to do."""


class ItemAnswer(msgspec.Struct):
    """One item of the batch answer (api/batch.py)."""

    index: int
    status: str
    replayed: bool = False
    type: str | None = None
    errors: list[dict[str, str]] = msgspec.field(default_factory=list)


class _BatchAnswer(msgspec.Struct):
    items: list[ItemAnswer]


class Sender:
    def __init__(self, client: httpx.AsyncClient, *, retry_for_s: float) -> None:
        self._client, self.retry_for_s = client, retry_for_s
        #: monotonic time before which nobody sends: the server asked for a pause.
        self._paused_until = 0.0
        #: Why the last retry happened, for the progress line.
        self.last_retry: str | None = None
        self.retries = 0

    async def send(self, body: bytes, *, items: int, lines: str) -> list[ItemAnswer]:
        """The answer for each of `items` items, in order. `lines` names them in messages."""
        attempt, first_failure = 0, 0.0
        while True:
            pause_s = self._paused_until - time.monotonic()
            if pause_s > 0:
                await asyncio.sleep(pause_s)
            retry_after_s: float | None = None
            try:
                response = await self._client.post(BATCH_PATH, content=body)
            except httpx.TransportError as exc:  # timeouts, refused and dropped connections
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code == 200:
                    return _answers(response, items, lines)
                reason = f"{response.status_code} {_detail(response)}"
                if response.status_code in (401, 403):
                    raise ImportStopped(
                        f"the service refused the API key ({reason}); check --key and its"
                        " submit scope")
                if response.status_code not in _RETRYABLE:
                    raise ImportStopped(f"the service refused the batch of {lines}: {reason}")
                retry_after_s = _retry_after_s(response)
            now = time.monotonic()
            first_failure = first_failure or now
            if now - first_failure >= self.retry_for_s:
                hint = (" (a 429 for every try: is --batch-size above the key's burst?)"
                        if reason.startswith("429") else "")
                raise ImportStopped(f"no answer for {lines} after {self.retry_for_s:g}s of"
                                    f" retries; last: {reason}{hint}")
            attempt += 1
            self.retries += 1
            self.last_retry = reason
            if retry_after_s is not None:
                # The server said when: hold every sender until then, plus a little spread.
                self._paused_until = max(self._paused_until,
                                         now + retry_after_s * random.uniform(1.0, 1.1))
            else:
                await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP_S,
                                                          BACKOFF_BASE_S * 2**attempt)))


def _answers(response: httpx.Response, items: int, lines: str) -> list[ItemAnswer]:
    try:
        answer = msgspec.json.decode(response.content, type=_BatchAnswer)
    except msgspec.DecodeError as exc:
        raise ImportStopped(f"unexpected answer to the batch of {lines}: {exc}") from None
    if sorted(a.index for a in answer.items) != list(range(items)):
        raise ImportStopped(f"the answer to the batch of {lines} does not list its {items}"
                            " items")
    return sorted(answer.items, key=lambda a: a.index)


def _detail(response: httpx.Response) -> str:
    """The problem+json detail (or title), else the reason phrase."""
    try:
        problem = msgspec.json.decode(response.content, type=dict[str, object])
    except msgspec.DecodeError:
        return response.reason_phrase
    text = problem.get("detail") or problem.get("title") or response.reason_phrase
    return str(text)[:300]


def _retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or odd."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None
