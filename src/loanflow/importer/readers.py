"""The file's identity, and its records as keyed request items, streamed from any offset.

A record is one data line (CSV: one row, which quoted newlines may spread over
several physical lines; it is numbered by the physical line it starts on).
Each carries the byte offset just past it, so an import can resume by seeking
there instead of re-reading what was already confirmed.

Keys: a line without its own key gets `import:<file id>:<line>`. The file id
is the SHA-256 of the whole content, read once before sending (a sequential
read costs about a second per GB, next to minutes of importing it). A hash of
the first KiBs and the size would be instant but lets two different files that
share their head and size (fixed-width exports, a file edited in place) reuse
each other's keys: their lines would then be refused as `idempotency-key-reused`
or, worse, answered with another file's application. The whole content never
changes between an interrupted run and its rerun, so neither does the id.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from loanflow.importer.columns import HeaderError, LineError, RowMapper

Format = Literal["csv", "ndjson"]
#: Longer physical lines are rejected unread: one application is a few KiB.
MAX_LINE_BYTES = 1024 * 1024
#: Hex digits of the content hash kept in keys (128 bits: no two files share one).
FILE_ID_HEX = 32
_CHUNK = 1024 * 1024

_encode = msgspec.json.Encoder().encode
_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


def file_identity(path: Path) -> str:
    """The SHA-256 of the file's content (hex, shortened): the same for every rerun."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:FILE_ID_HEX]


def derived_key(file_id: str, line: int) -> str:
    return f"import:{file_id}:{line}"


@dataclasses.dataclass(slots=True)
class Record:
    """One data line: a request item ready to send, or the reasons it cannot be sent."""

    line: int
    key: str | None
    #: `{"idempotency_key", "application"}` as JSON; None when rejected here.
    item: bytes | None
    errors: list[dict[str, str]]
    #: Byte offset and line number just past this record: where a resume starts.
    end_offset: int
    next_line: int


class _Lines:
    """Physical lines of a binary file with their numbers and offsets.

    Lines that are too long or not UTF-8 are "flawed": CSV still sees them (so its
    quoting stays in step), and the record they belong to is rejected.
    """

    def __init__(self, f: BinaryIO, *, offset: int, next_line: int, text: bool) -> None:
        self._f, self._text = f, text
        self.offset, self.line = offset, next_line - 1
        self.flaw: str | None = None
        f.seek(offset)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        raw = self._f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            self.flaw = f"line longer than {MAX_LINE_BYTES} bytes"
            while (rest := self._f.readline(_CHUNK)) and not rest.endswith(b"\n"):
                pass  # skip the rest unkept: only its length mattered
            self.offset = self._f.tell()
            self.line += 1
            return "\n" if self._text else b"\n"
        self.offset += len(raw)
        self.line += 1
        if not self._text:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.flaw = "not valid UTF-8"
            return raw.decode("utf-8", "replace")

    def take_flaw(self) -> str | None:
        flaw, self.flaw = self.flaw, None
        return flaw


def read_header(path: Path) -> list[str]:
    """The CSV header row; HeaderError when the file has none."""
    with path.open("rb") as f:
        lines = _Lines(f, offset=0, next_line=1, text=True)
        try:
            header = next(csv.reader(lines, strict=True))
        except (StopIteration, csv.Error) as exc:
            raise HeaderError(f"expected a header row on line 1 ({exc or 'empty file'})") from None
        if lines.take_flaw():
            raise HeaderError("the header row is not valid UTF-8 or too long")
    if header and header[0].startswith("\ufeff"):  # a BOM, as spreadsheets write it
        header[0] = header[0][1:]
    return header


def csv_records(path: Path, *, file_id: str, offset: int, next_line: int
                ) -> Iterator[Record]:
    """CSV data rows from `offset` (past the header when 0); HeaderError at once, not lazily."""
    mapper = RowMapper(read_header(path))
    return _csv_rows(path, mapper, file_id=file_id, offset=offset, next_line=next_line)


def _csv_rows(path: Path, mapper: RowMapper, *, file_id: str, offset: int, next_line: int
              ) -> Iterator[Record]:
    with path.open("rb") as f:
        lines = _Lines(f, offset=offset, next_line=next_line, text=True)
        rows = csv.reader(lines, strict=True)
        if offset == 0:
            next(rows)  # the header, checked above
        while True:
            start = lines.line + 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.take_flaw()
                yield _rejected(start, None, "$", f"not valid CSV: {exc}", lines)
                continue
            flaw = lines.take_flaw()
            if flaw:
                yield _rejected(start, None, "$", flaw, lines)
                continue
            if not row:
                continue  # a blank line
            try:
                key, application = mapper.map(row)
            except LineError as exc:
                yield Record(start, None, None, exc.errors, lines.offset, lines.line + 1)
                continue
            key = key or derived_key(file_id, start)
            item = _encode({"idempotency_key": key, "application": application})
            yield Record(start, key, item, [], lines.offset, lines.line + 1)


def ndjson_records(path: Path, *, file_id: str, offset: int, next_line: int
                   ) -> Iterator[Record]:
    """NDJSON lines from `offset`: an application each, or `{"idempotency_key", "application"}`."""
    with path.open("rb") as f:
        lines = _Lines(f, offset=offset, next_line=next_line, text=False)
        for raw in lines:
            line, flaw = lines.line, lines.take_flaw()
            if flaw:
                yield _rejected(line, None, "$", flaw, lines)
                continue
            text = raw.strip()
            if not text:
                continue
            try:
                key, application = _ndjson_item(text)
            except LineError as exc:
                yield Record(line, None, None, exc.errors, lines.offset, line + 1)
                continue
            key = key or derived_key(file_id, line)
            item = _encode({"idempotency_key": key, "application": application})
            yield Record(line, key, item, [], lines.offset, line + 1)


def _ndjson_item(text: bytes) -> tuple[str | None, msgspec.Raw]:
    try:
        fields = _decode_object(text)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise LineError([{"field": "$", "message": f"expected a JSON object: {exc}"}]) from None
    if "application" not in fields:
        return None, msgspec.Raw(text)  # the line is the application; the service checks it
    extra = sorted(set(fields) - {"application", "idempotency_key"})
    if extra:
        raise LineError([{"field": "$", "message": f"unexpected fields next to application: "
                          f"{extra}"}])
    raw_key = fields.get("idempotency_key")
    try:
        key = msgspec.json.decode(raw_key, type=str | None) if raw_key is not None else None
    except msgspec.DecodeError:
        raise LineError([{"field": "idempotency_key", "message": "expected a string"}]) from None
    return key, fields["application"]


def _rejected(line: int, key: str | None, field: str, message: str, lines: _Lines) -> Record:
    return Record(line, key, None, [{"field": field, "message": message}], lines.offset,
                  lines.line + 1)


def records(path: Path, fmt: Format, *, file_id: str, offset: int = 0, next_line: int = 1
            ) -> Iterator[Record]:
    """The file's records from a resume point (offset 0, line 1: the start)."""
    reader = csv_records if fmt == "csv" else ndjson_records
    return reader(path, file_id=file_id, offset=offset, next_line=next_line)
