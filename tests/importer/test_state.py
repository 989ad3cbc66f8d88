"""The resume state: replaced atomically, refused when unreadable or of another version."""

from __future__ import annotations

from pathlib import Path

import pytest

from loanflow.importer.state import ResumeState, StateError, load, save


def test_a_saved_state_loads_back_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = ResumeState(file="f.csv", file_id="abc", format="csv", next_line=501,
                        offset=12345, report_bytes=77, accepted=490, replayed=3, rejected=7)

    save(path, state)
    save(path, state)  # replacing an existing state works the same way

    assert load(path) == state
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_no_state_file_means_start_at_the_beginning(tmp_path: Path) -> None:
    assert load(tmp_path / "missing.json") is None


def test_a_file_that_is_not_a_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{half")

    with pytest.raises(StateError, match="not an import state file"):
        load(path)


def test_a_state_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"v": 99, "file": "f", "file_id": "x", "format": "csv"}')

    with pytest.raises(StateError, match="expected state version 1"):
        load(path)
