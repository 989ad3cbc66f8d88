"""The decision trace: each computed figure with the inputs it came from."""

from __future__ import annotations

import msgspec

TraceValue = int | str | None


class TraceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One computed figure and the inputs it came from."""

    name: str
    value: TraceValue
    inputs: dict[str, TraceValue]


class Trace:
    """The decision trace being built for one application."""

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []

    def add(self, name: str, value: TraceValue, **inputs: TraceValue) -> None:
        self.entries.append(TraceEntry(name=name, value=value, inputs=inputs))
