"""`loanflow import` against a real embedded server: files in, applications stored once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loanflow.importer.columns import COLUMN_PATHS
from loanflow.importer.readers import derived_key
from loanflow.importer.report import LOCAL_TYPE
from tests.conftest import LOANFLOW, ServerProcess, create_key
from tests.importer.conftest import (
    import_file,
    report_of,
    stored_keys,
    wait_stored,
)
from tests.importer.files import applications, csv_row, write_csv, write_ndjson


@pytest.fixture(scope="module")
def key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "submit,read")


def test_a_csv_file_is_imported_and_every_line_stored(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(30, seed=11))

    done = import_file(embedded_server, key, path, "--batch-size", "7")

    assert done.returncode == 0, done.stderr
    s = done.summary
    assert (s["complete"], s["lines"], s["accepted"], s["replayed"], s["rejected"]) == (
        True, 30, 30, 0, 0)
    assert report_of(tmp_path / "apps.csv.rejected.ndjson") == []
    prefix = derived_key(s["file_id"], 0)[:-1]
    stored = wait_stored(embedded_server.deployment, prefix, 30)
    assert sorted(stored) == sorted(derived_key(s["file_id"], line) for line in range(2, 32))


def test_an_ndjson_file_of_applications_and_keyed_items_is_imported(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    a, b, c = applications(3, seed=12)
    path = write_ndjson(tmp_path / "apps.ndjson", [
        a, {"idempotency_key": "crm-ndjson-1", "application": b}, "", {"application": c}])

    done = import_file(embedded_server, key, path)

    assert done.returncode == 0, done.stderr
    assert (done.summary["lines"], done.summary["accepted"]) == (3, 3)
    file_id = done.summary["file_id"]
    wait_stored(embedded_server.deployment, "crm-ndjson-1", 1)
    wait_stored(embedded_server.deployment, f"import:{file_id}:", 2)
    assert set(stored_keys(embedded_server.deployment, f"import:{file_id}:")) == {
        derived_key(file_id, 1), derived_key(file_id, 4)}


def test_invalid_csv_lines_are_reported_with_reasons_and_the_valid_ones_stored(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    apps = list(applications(8, seed=13))
    rows = [csv_row(app) for app in apps]
    rows[1]["annual_income"] = "lots"              # line 3: mapped here, refused here
    rows[2]["state"] = "California"                # line 4: refused by the service (schema)
    rows[4]["term_months"] = "36.5"                # line 6: here
    rows[5]["purpose"] = "yacht"                   # line 7: the service
    lines = [",".join(COLUMN_PATHS)] + [",".join(r.values()) for r in rows]
    lines[8] += ",extra"                            # line 9: a column too many
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")

    done = import_file(embedded_server, key, path, "--batch-size", "3")

    assert done.returncode == 0, done.stderr
    s = done.summary
    assert (s["lines"], s["accepted"], s["rejected"]) == (8, 3, 5)
    report = report_of(tmp_path / "mixed.csv.rejected.ndjson")
    assert [(e["line"], e["by"]) for e in report] == [
        (3, "importer"), (4, "service"), (6, "importer"), (7, "service"), (9, "importer")]
    by_line = {e["line"]: e for e in report}
    assert by_line[3]["errors"] == [{"field": "annual_income",
                                     "message": "expected a number like 1234.56"}]
    assert by_line[3]["type"] == LOCAL_TYPE
    assert by_line[4]["type"] == "/problems/validation-error"
    assert [e["field"] for e in by_line[4]["errors"]] == ["application.applicant.address.state"]
    assert [e["field"] for e in by_line[7]["errors"]] == ["application.loan.purpose"]
    assert by_line[9]["errors"][0]["message"].startswith("expected 26 columns, got 27")
    assert by_line[4]["idempotency_key"] == derived_key(s["file_id"], 4)
    stored = wait_stored(embedded_server.deployment, f"import:{s['file_id']}:", 3)
    assert sorted(stored) == sorted(derived_key(s["file_id"], n) for n in (2, 5, 8))


def test_invalid_ndjson_lines_and_a_reused_key_are_reported(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    a, b = applications(2, seed=14)
    path = write_ndjson(tmp_path / "bad.ndjson", [
        {"idempotency_key": "crm-reused", "application": a},
        "{not json",
        {"idempotency_key": "crm-reused", "application": b},   # same key, other body
        {**a, "channel": "fax"},
    ])

    done = import_file(embedded_server, key, path)

    assert done.returncode == 0, done.stderr
    assert (done.summary["accepted"], done.summary["rejected"]) == (1, 3)
    report = report_of(tmp_path / "bad.ndjson.rejected.ndjson")
    assert [(e["line"], e["type"]) for e in report] == [
        (2, LOCAL_TYPE), (3, "/problems/idempotency-key-reused"),
        (4, "/problems/validation-error")]


def test_rerunning_an_imported_file_stores_nothing_new(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    apps = list(applications(20, seed=15))
    path = write_ndjson(tmp_path / "again.ndjson", [*apps[:10], "oops", *apps[10:]])
    first = import_file(embedded_server, key, path, "--batch-size", "6")
    report_before = (tmp_path / "again.ndjson.rejected.ndjson").read_bytes()
    prefix = f"import:{first.summary['file_id']}:"
    wait_stored(embedded_server.deployment, prefix, 20)

    again = import_file(embedded_server, key, path)
    restarted = import_file(embedded_server, key, path, "--restart")

    assert (again.returncode, again.summary["lines_this_run"]) == (0, 0)
    assert (again.summary["accepted"], again.summary["rejected"]) == (20, 1)
    r = restarted.summary
    assert (restarted.returncode, r["lines_this_run"]) == (0, 21)
    assert (r["accepted"], r["replayed"], r["rejected"]) == (0, 20, 1)
    assert (tmp_path / "again.ndjson.rejected.ndjson").read_bytes() == report_before
    assert len(stored_keys(embedded_server.deployment, prefix)) == 20


@pytest.mark.parametrize("scopes", ["", "read"])
def test_a_key_the_service_refuses_stops_the_import_with_a_clear_message(
    embedded_server: ServerProcess, tmp_path: Path, scopes: str
) -> None:
    key = create_key(embedded_server.deployment, scopes) if scopes else "lf_bogus"
    path = write_csv(tmp_path / "apps.csv", applications(5, seed=16))

    done = import_file(embedded_server, key, path)

    assert done.returncode == 1
    status = "403" if scopes else "401"
    assert f"stopped: the service refused the API key ({status}" in done.stderr
    assert "check --key" in done.stderr
    assert (done.summary["complete"], done.summary["next_line"], done.summary["lines"]) == (
        False, 1, 0)


def test_a_request_the_service_refuses_as_a_whole_stops_the_import(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(3, seed=21))

    done = subprocess.run(
        [*LOANFLOW, "import", str(path), "--url", embedded_server.url + "/typo", "--key", key],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert done.returncode == 1
    assert "stopped: the service refused the batch of lines 2-4: 404" in done.stderr
    assert "rerun the same command to resume at line 1" in done.stdout


def test_a_file_changed_since_its_interrupted_import_is_not_resumed(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(3, seed=17))
    assert import_file(embedded_server, key, path).returncode == 0
    with path.open("a") as f:
        f.write(",".join(csv_row(next(applications(1, seed=18))).values()) + "\n")

    done = import_file(embedded_server, key, path)

    assert done.returncode == 2
    assert "records an import of other content" in done.stderr
    assert done.summary == {}


def test_a_header_the_importer_cannot_map_stops_before_anything_is_sent(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "typo.csv"
    path.write_text(",".join(COLUMN_PATHS).replace("address_line1", "adress_line1") + "\n")

    done = import_file(embedded_server, key, path)

    assert done.returncode == 2
    assert "unknown columns ['adress_line1']" in done.stderr
    assert not (tmp_path / "typo.csv.import-state.json").exists()


def test_a_report_in_a_missing_directory_is_a_usage_error(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(1, seed=19))

    done = import_file(embedded_server, key, path, "--report", str(tmp_path / "no" / "r.ndjson"))

    assert done.returncode == 2
    assert f"no directory {tmp_path / 'no'}" in done.stderr


@pytest.mark.parametrize(("name", "args", "message"), [
    ("apps.txt", (), "cannot tell the format of apps.txt"),
    ("missing.csv", (), "no file"),
    ("apps.csv", ("--batch-size", "5000"), "expected a batch size of 1-1000, got 5000"),
    ("apps.csv", ("--url", "127.0.0.1:8000"), "expected an http(s):// URL"),
])
def test_usage_errors_send_nothing_and_say_what_was_expected(
    embedded_server: ServerProcess, key: str, tmp_path: Path, name: str,
    args: tuple[str, ...], message: str,
) -> None:
    for existing in ("apps.txt", "apps.csv"):
        write_csv(tmp_path / existing, applications(1, seed=22))

    done = import_file(embedded_server, key, tmp_path / name, *args)

    assert (done.returncode, done.summary) == (2, {})
    assert message in done.stderr


def test_a_report_that_cannot_be_written_stops_the_import(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(1, seed=23))
    (tmp_path / "apps.csv.rejected.ndjson").mkdir()  # in the report's way

    done = import_file(embedded_server, key, path)

    assert done.returncode == 1
    assert "stopped: [Errno 21] Is a directory" in done.stderr


def test_progress_and_summary_are_plain_text_when_not_on_a_terminal(
    embedded_server: ServerProcess, key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(5, seed=20))
    (tmp_path / "out").mkdir()

    done = subprocess.run(
        [*LOANFLOW, "import", str(path), "--url", embedded_server.url, "--key", key,
         "--report", str(tmp_path / "out" / "rejected.ndjson")],
        capture_output=True, text=True, timeout=60, check=True,
    )

    assert "\r" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("5 lines  100.0%")
    assert "accepted           5" in done.stdout
    assert (tmp_path / "out" / "apps.csv.import-state.json").exists()  # beside the report
