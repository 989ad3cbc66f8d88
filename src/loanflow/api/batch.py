"""`POST /v1/applications/batch`: up to 1,000 applications in one durable append.

The body is a JSON array or NDJSON (`application/x-ndjson`) of
`{"idempotency_key": "…", "application": {…}}`. Each item is checked on its
own: the invalid ones are reported by index, the valid ones are appended
together (one commit, one fsync), each with the idempotency rules of a single
submission. The answer lists every item's result in order.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api.applications import (
    MAX_IDEMPOTENCY_KEY,
    make_submission,
    note_outcome,
    read_body,
    require_own_partner,
    require_queue_room,
    runtime_of,
    valid_idempotency_key,
)
from loanflow.api.components import ref
from loanflow.api.problems import TYPE_BASE, FieldProblem
from loanflow.api.schema import decode_application
from loanflow.apikeys import Scope
from loanflow.broker.base import AppendOutcome, Submission
from loanflow.errors import (
    IdempotencyKeyReused,
    LoanflowError,
    MalformedRequest,
    PayloadTooLarge,
    RequestError,
    UnsupportedMediaType,
)
from loanflow.metrics import names
from loanflow.models import Moment, format_ts

MAX_ITEMS = 1000
MAX_BATCH_BYTES = 16 * 1024 * 1024
JSON, NDJSON = "application/json", "application/x-ndjson"

_encode = msgspec.json.Encoder().encode


class Item(msgspec.Struct, forbid_unknown_fields=True):
    """One application of a batch and its own Idempotency-Key."""

    #: Its bounds for the schema only: checked after decoding, with the header's message.
    idempotency_key: Annotated[str, msgspec.Meta(extra_json_schema={
        "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY})]
    #: Kept raw: decoded and checked exactly like a single submission's body.
    application: Annotated[msgspec.Raw, ref("Application")]


class Queued(msgspec.Struct, tag_field="status", tag="queued", kw_only=True):
    """An item durably queued (or, `replayed`, queued before under the same key and body)."""

    index: int
    idempotency_key: str
    id: str
    received_at: Moment
    replayed: bool


class Refused(msgspec.Struct, tag_field="status", tag="refused", kw_only=True):
    """An item refused, nothing stored: its problem type and every wrong field."""

    index: int
    #: Null when the item names none (not an object, or no string key).
    idempotency_key: str | None
    type: str
    errors: list[FieldProblem]


class BatchResult(msgspec.Struct, kw_only=True):
    """How many items were queued and refused, and each item's result, in order."""

    accepted: int
    refused: int
    items: list[Queued | Refused]


async def submit_batch(request: Request) -> Response:
    rt = runtime_of(request)
    started = time.perf_counter()
    try:
        key = await request.app.state.auth.require(request, Scope.SUBMIT)
        items = _items(request, await read_body(request, MAX_BATCH_BYTES))
        await request.app.state.limiter.acquire(key, len(items))
        require_queue_room(rt)
    except LoanflowError as exc:
        rt.metrics.recorder.answered(exc.status)
        raise
    results: list[Queued | Refused | None] = []
    valid: list[tuple[int, Submission, str]] = []
    for index, raw in enumerate(items):
        rt.metrics.recorder.count(names.RECEIVED)
        try:
            item = _decode_item(raw)
            if not valid_idempotency_key(item.idempotency_key):
                raise MalformedRequest(
                    f"expected an idempotency_key of 1-{MAX_IDEMPOTENCY_KEY} printable ASCII "
                    "characters")
            application = decode_application(bytes(item.application))
            _refuse_duplicate_fields(raw, bytes(item.application))
            require_own_partner(key, application)
        except (msgspec.DecodeError, RequestError) as exc:
            results.append(_refused(index, raw, exc))
            rt.metrics.recorder.answered(getattr(exc, "status", 422))
            continue
        client_ip = request.client.host if request.client else None
        submission = make_submission(rt.cipher, client_ip, key.id, item.idempotency_key,
                                     application)
        results.append(None)  # filled in once the append answers
        valid.append((index, submission, application.channel))
    appended = await rt.broker.append([s for _, s, _ in valid]) if valid else []
    for (index, submission, channel), result in zip(valid, appended, strict=True):
        note_outcome(rt, result.outcome, channel)
        key_used = submission.envelope.idempotency_key
        if result.outcome is AppendOutcome.KEY_REUSED:
            results[index] = Refused(
                index=index, idempotency_key=key_used,
                type=TYPE_BASE + IdempotencyKeyReused.type,
                errors=[FieldProblem("idempotency_key", "already used with a different body")])
        else:
            results[index] = Queued(
                index=index, idempotency_key=key_used, id=result.application_id,
                received_at=format_ts(result.received_at_ns),
                replayed=result.outcome is AppendOutcome.REPLAYED)
    rt.metrics.recorder.observe(names.API, time.perf_counter() - started)
    answered = [r for r in results if r is not None]
    accepted = sum(1 for r in answered if isinstance(r, Queued))
    body = BatchResult(accepted=accepted, refused=len(answered) - accepted, items=answered)
    return Response(_encode(body), 200, media_type="application/json")


def _items(request: Request, body: bytes) -> list[bytes]:
    """The raw JSON of each item: the array's elements, or NDJSON's non-empty lines."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == JSON:
        try:
            raws = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            raise MalformedRequest(f"expected a JSON array of items: {exc}") from None
        items = [bytes(raw) for raw in raws]
    elif media_type == NDJSON:
        items = [line for line in body.split(b"\n") if line.strip()]
    else:
        raise UnsupportedMediaType(f"expected {JSON} or {NDJSON}, got {media_type!r}")
    if not items:
        raise MalformedRequest("expected at least one item")
    if len(items) > MAX_ITEMS:
        raise PayloadTooLarge(f"{len(items)} items is over the limit of {MAX_ITEMS}")
    return items


def _decode_item(raw: bytes) -> Item:
    try:
        return msgspec.json.decode(raw, type=Item)
    except UnicodeDecodeError:
        raise MalformedRequest("item is not valid UTF-8") from None
    except RecursionError:
        raise MalformedRequest("item is nested too deeply") from None


def _refuse_duplicate_fields(raw: bytes, application: bytes) -> None:
    """An item with a field twice is refused, as a single submission with a key twice
    is: msgspec keeps the last, another parser may keep the first.

    The application was checked already (`decode_application`), so only the item's own
    level is parsed again: its application's bytes are cut out first. They cannot occur
    inside a JSON string, where every quote they hold would be escaped.
    """
    try:
        pairs = json.loads(raw.replace(application, b"0", 1), object_pairs_hook=list)
    except RecursionError:  # a second application, nested deeper than json's stack
        raise MalformedRequest("item is nested too deeply") from None
    fields = [name for name, _ in pairs]
    for name in set(fields):
        if fields.count(name) > 1:
            raise MalformedRequest(f"duplicate key {name!r} in an item")


def _refused(index: int, raw: bytes, exc: Exception) -> Refused:
    key = None  # reported back when the item is at least an object that names one
    with contextlib.suppress(msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        key = msgspec.json.decode(raw, type=dict[str, Any]).get("idempotency_key")
    errors = getattr(exc, "errors", None)
    listed = ([FieldProblem(f"application.{e.field}", e.message) for e in errors]
              if errors else [FieldProblem("$", str(exc))])
    return Refused(index=index, idempotency_key=key if isinstance(key, str) else None,
                   type=TYPE_BASE + getattr(exc, "type", MalformedRequest.type),
                   errors=listed)
