"""The rejected-lines report: one JSON object per line of the file that was not accepted.

`{"line", "idempotency_key", "by": "importer" | "service", "type", "errors": [...]}`,
in line order: entries are written only as lines are confirmed in order, so
the report's length at the resume point is exact and a resume truncates back
to it instead of listing a line twice. It names lines and fields, never their
values: the input holds SSNs and dates of birth, and this file travels further.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode

#: `type` of a line rejected before sending (the service's are `/problems/…`).
LOCAL_TYPE = "unmappable-line"


class Report:
    def __init__(self, path: Path, *, keep_bytes: int) -> None:
        """Opens the report, keeping its first `keep_bytes` (0: a fresh report)."""
        self.path = path
        self._f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")
        length = self._f.seek(0, os.SEEK_END)
        if length > keep_bytes:
            self._f.truncate(keep_bytes)
            self._f.seek(keep_bytes)
        elif length < keep_bytes:
            print(f"loanflow import: {path} is shorter than when the import stopped; "
                  "earlier rejected lines are missing from it", file=sys.stderr)

    def local(self, line: int, key: str | None, errors: list[dict[str, str]]) -> None:
        self._write({"line": line, "idempotency_key": key, "by": "importer",
                     "type": LOCAL_TYPE, "errors": errors})

    def refused(self, line: int, key: str | None, problem_type: str | None,
                errors: list[dict[str, Any]]) -> None:
        self._write({"line": line, "idempotency_key": key, "by": "service",
                     "type": problem_type, "errors": errors})

    def _write(self, entry: dict[str, Any]) -> None:
        self._f.write(_encode(entry) + b"\n")

    @property
    def size_bytes(self) -> int:
        return self._f.tell()

    def sync(self) -> None:
        """Flush and fsync: the state about to be saved points at this length."""
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()
