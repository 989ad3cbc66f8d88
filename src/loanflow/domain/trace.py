"""The decision trace: each computed figure with the inputs it came from."""

from __future__ import annotations

import msgspec

TraceValue = int | str | None


class TraceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One computed figure and the inputs it came from."""

    name: str
    value: TraceValue
    inputs: dict[str, TraceValue]

