"""Readers: records numbered by the line they start on, keyed, resumable from any offset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loanflow.importer.batches import batches
from loanflow.importer.columns import COLUMN_PATHS, HeaderError
from loanflow.importer.readers import (
    MAX_LINE_BYTES,
    derived_key,
    file_identity,
    read_header,
    records,
)
from tests.importer.files import applications, csv_row, write_csv, write_ndjson

HEADER = ",".join(COLUMN_PATHS)


def _csv_line(app: dict[str, object], **changes: str) -> str:
    row = {**csv_row(app), **changes}
    return ",".join(f'"{v}"' if ("," in v or "\n" in v) else v for v in row.values())


def test_the_file_id_depends_on_the_whole_content_only(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", applications(20, seed=1))
    copy = tmp_path / "copy.csv"
    copy.write_bytes(a.read_bytes())
    edited = tmp_path / "edited.csv"
    edited.write_bytes(a.read_bytes().replace(b"example", b"exampke", 1))

    assert file_identity(a) == file_identity(copy)
    assert file_identity(a) != file_identity(edited)
    assert edited.stat().st_size == a.stat().st_size


def test_csv_records_are_numbered_by_their_first_physical_line(tmp_path: Path) -> None:
    one, two = applications(2, seed=2)
    path = tmp_path / "f.csv"
    path.write_text(HEADER + "\n" + _csv_line(one, address_line2="Apt 1\nBack door") + "\n\n"
                    + _csv_line(two) + "\n")

    got = list(records(path, "csv", file_id="f1"))

    assert [(r.line, r.key) for r in got] == [(2, derived_key("f1", 2)), (5, derived_key("f1", 5))]
    assert json.loads(got[0].item or b"")["application"]["applicant"]["address"]["line2"] == (
        "Apt 1\nBack door")


def test_resuming_at_a_records_offset_yields_exactly_the_records_after_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", applications(50, seed=3))
    whole = list(records(path, "csv", file_id="f"))
    cut = whole[19]

    rest = list(records(path, "csv", file_id="f", offset=cut.end_offset, next_line=cut.next_line))

    assert rest == whole[20:]


def test_a_bom_before_the_header_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"\n")

    assert read_header(path) == list(COLUMN_PATHS)


def test_an_empty_csv_has_no_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    with pytest.raises(HeaderError, match="expected a header row"):
        records(path, "csv", file_id="f")


def test_malformed_csv_lines_are_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    a, b, c, d = applications(4, seed=4)
    path = tmp_path / "f.csv"
    with path.open("wb") as f:
        f.write(HEADER.encode() + b"\n")
        f.write(_csv_line(a).encode() + b"\n")                    # line 2: fine
        f.write(_csv_line(b).encode().replace(b"@", b"\xff") + b"\n")  # 3: not UTF-8
        f.write(b"x" * (MAX_LINE_BYTES + 10) + b"\n")             # 4: too long
        f.write(b'"abc"def,' + _csv_line(c).encode() + b"\n")     # 5: stray quote
        f.write(_csv_line(d).encode() + b"\n")                    # 6: fine

    got = {r.line: r for r in records(path, "csv", file_id="f")}

    assert sorted(got) == [2, 3, 4, 5, 6]
    assert got[2].item is not None and got[6].item is not None
    assert got[3].errors == [{"field": "$", "message": "not valid UTF-8"}]
    assert got[4].errors == [{"field": "$", "message": f"line longer than {MAX_LINE_BYTES} bytes"}]
    assert got[5].errors[0]["message"].startswith("not valid CSV")


def test_ndjson_lines_are_applications_or_keyed_wrappers(tmp_path: Path) -> None:
    a, b, c = applications(3, seed=5)
    path = write_ndjson(tmp_path / "f.ndjson", [
        a, "", {"idempotency_key": "crm-1", "application": b}, {"application": c},
    ])

    got = list(records(path, "ndjson", file_id="f"))

    assert [(r.line, r.key) for r in got] == [
        (1, derived_key("f", 1)), (3, "crm-1"), (4, derived_key("f", 4))]
    assert [json.loads(r.item or b"")["application"] for r in got] == [a, b, c]


def test_ndjson_lines_that_are_not_items_are_rejected(tmp_path: Path) -> None:
    [a] = applications(1, seed=6)
    path = write_ndjson(tmp_path / "f.ndjson", [
        "not json", "[1, 2]", {"application": a, "note": "x"},
        {"idempotency_key": 7, "application": a},
    ])

    got = list(records(path, "ndjson", file_id="f"))

    assert [r.item for r in got] == [None] * 4
    assert got[0].errors[0]["message"].startswith("expected a JSON object")
    assert got[1].errors[0]["message"].startswith("expected a JSON object")
    assert got[2].errors == [{"field": "$",
                              "message": "unexpected fields next to application: ['note']"}]
    assert got[3].errors == [{"field": "idempotency_key", "message": "expected a string"}]


def test_batches_hold_at_most_size_sendable_records_and_keep_rejects_in_place(
    tmp_path: Path,
) -> None:
    apps = list(applications(5, seed=7))
    path = write_ndjson(tmp_path / "f.ndjson", [apps[0], "oops", *apps[1:]])

    got = list(batches(records(path, "ndjson", file_id="f"), size=2))

    assert [[r.line for r in b.records] for b in got] == [[1, 2, 3], [4, 5], [6]]
    assert [len(json.loads(b.body())) for b in got] == [2, 2, 1]
    assert got[-1].next_line == 7 and got[-1].end_offset == path.stat().st_size
