"""Test files for the importer: seeded synthetic applications as CSV or NDJSON."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loanflow.importer.columns import COLUMN_PATHS
from loanflow.loadgen.synthetic import generate

#: A fixed decision date: the same seed makes the same file on any day.
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def applications(count: int, *, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield generate(rng, now=NOW)


def csv_row(application: dict[str, Any]) -> dict[str, str]:
    """The application as CSV cells under the importer's column names."""
    row = {}
    for name, path in COLUMN_PATHS.items():
        node: Any = application
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            node = "true" if node else "false"
        row[name] = "" if node is None else str(node)
    return row


def write_csv(path: Path, apps: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMN_PATHS))
        writer.writeheader()
        for app in apps:
            writer.writerow(csv_row(app))
    return path


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("w") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path
