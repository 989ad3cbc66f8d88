"""GET /v1/exports/applications.csv, the app in-process over each mode's backends: the
search's filters and refusals, the columns and their masking, the counts in the headers,
the cap, CSV-injection escaping, and a file streamed a page at a time."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from loanflow.api import export
from loanflow.api.export import COLUMNS, ExportLimits
from loanflow.models import format_ts
from loanflow.store.base import ApplicationRecord
from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.api.test_search import (
    BAD,
    FILTERS,
    KINDS,
    SECOND_NS,
    execute,
    found,
    newest_first,
    record,
    window,
    write,
)
from tests.api.test_submit import submit
from tests.conftest import auth, sample_application, wait_for_status

app = app_fixture()
client = client_fixture()
keys = keys_fixture()

PATH = "/v1/exports/applications.csv"


def full_document(**applicant: Any) -> bytes:
    """A stored document as the processor writes it (SSN and birth date masked)."""
    person = {"first_name": "Grace", "last_name": "Hopper", "ssn": "***-**-4321",
              "date_of_birth": "****-**-**", "email": "grace@example.com",
              "address": {"line1": "1 Navy Way", "city": "Arlington", "state": "VA",
                          "zip": "22202"}, **applicant}
    return msgspec.json.encode({
        "application": {"applicant": person,
                        "loan": {"amount": 12500.5, "term_months": 48, "purpose": "auto"}},
        "assessment": {"violations": [], "enrichment": {
            "score": 702, "risk_tier": "B", "route": "manual_review",
            "flags": ["velocity_email", "duplicate_ssn_24h"],
            "route_reasons": [{"code": "route.tier.not_fast_track", "message": "B"},
                              {"code": "route.flag.velocity_email", "message": "4 in 1 h"}],
            "trace": [{"name": "score", "value": 702, "inputs": {}}]}},
    })


def exported(client: httpx.Client, key: str, **query: Any) -> httpx.Response:
    return client.get(PATH, params=query, headers=auth(key))


def rows_of(answer: httpx.Response) -> list[dict[str, str]]:
    """The CSV's rows as dicts, after checking its header row."""
    assert answer.status_code == 200, answer.text
    reader = csv.reader(io.StringIO(answer.content.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in rows]


def ids_of(answer: httpx.Response) -> list[str]:
    return [row["id"] for row in rows_of(answer)]


@pytest.fixture
def limits(app: InProcessApp) -> Iterator[Any]:
    """Set small export limits on the app for one test (production keeps the defaults)."""

    def use(**bounds: int) -> None:
        app.app.state.export_limits = ExportLimits(**bounds)

    yield use
    del app.app.state.export_limits


def test_the_production_cap_is_100_000_rows_read_500_at_a_time():
    assert (export.MAX_ROWS, export.PAGE_ROWS) == (100_000, 500)
    assert (ExportLimits().max_rows, ExportLimits().page_rows) == (100_000, 500)


# -- content ------------------------------------------------------------------------------


def test_a_row_holds_the_operators_columns_with_pii_masked(app, client, keys, deployment):
    # Given an application routed to review, then decided
    start_ns, bounds = window()
    made = record(start_ns, route="manual_review", channel="broker", partner_id="p-5",
                  external_id="crm-55", document=full_document())
    write(app, made)
    execute(deployment, "UPDATE applications SET review_decision = 'approve', review_reason ="
                        " 'stub verified', reviewed_by = 'k1', reviewed_at_ns ="
                        f" {start_ns + 9 * SECOND_NS} WHERE id = '{made.id}'")

    # When its search is exported
    answer = exported(client, keys["read"], **bounds)

    # Then the one row shows what an operator looks for, in the documented columns
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert rows_of(answer) == [{
        "id": made.id, "received_at": format_ts(start_ns),
        "processed_at": format_ts(made.processed_at_ns), "status": "stored",
        "route": "manual_review", "channel": "broker", "partner_id": "p-5",
        "external_id": "crm-55", "applicant_name": "Grace Hopper", "ssn": "***-**-4321",
        "email": "grace@example.com", "state": "VA", "loan_amount": "12500.50",
        "term_months": "48", "purpose": "auto", "risk_tier": "B", "score": "702",
        "flags": "velocity_email; duplicate_ssn_24h",
        "reasons": "route.tier.not_fast_track; route.flag.velocity_email",
        "review_decision": "approve", "review_reason": "stub verified", "reviewed_by": "k1",
        "reviewed_at": format_ts(start_ns + 9 * SECOND_NS),
    }]


def test_a_processed_application_is_exported_as_the_single_view_masks_it(client, keys):
    external_id = f"crm-{uuid.uuid4().hex[:12]}"
    accepted = submit(client, keys["submit"], sample_application(external_id=external_id))
    assert accepted.status_code == 202, accepted.text
    single = wait_for_status(client, keys["submit"], accepted.json()["id"])

    answer = exported(client, keys["read"], external_id=external_id)

    [row] = rows_of(answer)
    applicant = single["application"]["applicant"]
    assert (row["id"], row["status"], row["ssn"], row["applicant_name"], row["email"]) == (
        single["id"], single["status"], applicant["ssn"], "Ada Lovelace", applicant["email"])
    assert (row["received_at"], row["processed_at"]) == (single["received_at"],
                                                         single["processed_at"])
    assert (row["risk_tier"], row["score"]) == (single["enrichment"]["risk_tier"],
                                                str(single["enrichment"]["score"]))
    for secret in ("123-45-6789", "123456789", "1985-12-10", "12/10/1985"):
        assert secret not in answer.text


def test_a_rejected_row_lists_its_rule_codes_and_a_dead_letter_row_its_columns(app, client,
                                                                               keys):
    start_ns, bounds = window()
    rejected = record(start_ns, status="rejected", route=None, document=msgspec.json.encode({
        "application": {"applicant": {"first_name": "Al", "last_name": "B",
                                      "ssn": "***-**-0001"}},
        "assessment": {"violations": [
            {"code": "loan.amount.below_minimum", "field": "loan.amount", "message": "m"},
            {"code": "applicant.age.under_minimum", "field": "x", "message": "m"}],
            "enrichment": None}}))
    dead = record(start_ns + SECOND_NS, status="dead_lettered", route=None,
                  document=b'{"attempts":[]}')
    write(app, rejected, dead)

    rows = rows_of(exported(client, keys["read"], **bounds))

    assert [(r["id"], r["status"], r["reasons"], r["score"], r["applicant_name"])
            for r in rows] == [
        (dead.id, "dead_lettered", "", "", ""),
        (rejected.id, "rejected", "loan.amount.below_minimum; applicant.age.under_minimum",
         "", "Al B")]


# -- filters, counts, cap -----------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), FILTERS,
                         ids=["-".join(f"{k}={v}" for k, v in q.items()) or "none"
                              for q, _ in FILTERS])
def test_each_filter_exports_what_the_search_finds(app, client, keys, query, expected):
    start_ns, bounds = window()
    made = {name: record(start_ns + n * SECOND_NS, **fields)
            for n, (name, fields) in enumerate(KINDS.items())}
    write(app, *made.values())

    answer = exported(client, keys["read"], **bounds, **query)

    assert ids_of(answer) == [made[n].id for n in expected]
    assert ids_of(answer) == found(client, keys["read"], **bounds, **query)
    assert answer.headers["x-total-rows"] == str(len(expected))
    assert "x-truncated" not in answer.headers


def test_the_file_is_named_for_the_time_of_the_export(client, keys):
    answer = exported(client, keys["read"], since="2001-01-01T00:00:00Z",
                      until="2001-01-02T00:00:00Z")

    assert re.fullmatch(r'attachment; filename="applications-\d{8}T\d{6}Z\.csv"',
                        answer.headers["content-disposition"])
    assert rows_of(answer) == []
    assert answer.headers["x-total-rows"] == "0"


def test_over_the_cap_the_file_stops_there_and_says_so(app, client, keys, limits):
    # Given seven matching applications and a cap of five
    start_ns, bounds = window()
    made = [record(start_ns + n * SECOND_NS) for n in range(7)]
    write(app, *made)
    limits(max_rows=5, page_rows=2)

    answer = exported(client, keys["read"], **bounds)

    # Then the newest five, counted as five, and marked truncated
    assert ids_of(answer) == newest_first(*made)[:5]
    assert (answer.headers["x-total-rows"], answer.headers["x-truncated"]) == ("5", "true")


def test_exactly_the_cap_is_not_truncated(app, client, keys, limits):
    start_ns, bounds = window()
    made = [record(start_ns + n * SECOND_NS) for n in range(5)]
    write(app, *made)
    limits(max_rows=5, page_rows=2)

    answer = exported(client, keys["read"], **bounds)

    assert ids_of(answer) == newest_first(*made)
    assert answer.headers["x-total-rows"] == "5"
    assert "x-truncated" not in answer.headers


def test_the_file_is_streamed_a_page_at_a_time_complete_and_in_order(app, keys, limits):
    # Given 20 applications, two received in the same nanosecond, and pages of three
    start_ns, bounds = window()
    made = [record(start_ns + n * SECOND_NS // 10) for n in range(19)]
    made.append(record(made[7].received_at_ns))
    write(app, *made)
    limits(max_rows=1000, page_rows=3)

    # When exported
    status, headers, chunks = app.chunks(PATH, query=urlencode(bounds),
                                         headers=auth(keys["read"]))

    # Then the header row comes first, alone, then each page as it was read: every row
    # once, newest first, across the page boundaries
    assert status == 200
    assert chunks[0].decode() == ",".join(COLUMNS) + "\r\n"
    assert [chunk.count(b"\r\n") for chunk in chunks[1:]] == [3] * 6 + [2]
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))[1:]
    assert [row[0] for row in rows] == newest_first(*made)
    assert headers["x-total-rows"] == "20"


def test_an_application_received_after_the_export_began_is_left_out(app, client, keys):
    # Given one received before now and one (clock skew, a test) received in the future
    start_ns, _ = window()
    partner = f"p-{uuid.uuid4().hex[:8]}"
    before = record(start_ns, partner_id=partner)
    after = record(2**62, partner_id=partner)
    write(app, before, after)

    answer = exported(client, keys["read"], partner_id=partner)

    assert ids_of(answer) == [before.id]
    assert answer.headers["x-total-rows"] == "1"


# -- CSV injection ------------------------------------------------------------------------


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_prefixed(app, client, keys,
                                                                 deployment):
    start_ns, bounds = window()
    made: ApplicationRecord = record(
        start_ns, partner_id="@SUM(A1:A9)", external_id='=HYPERLINK("http://x.test")',
        document=full_document(first_name="+cmd", last_name="|calc", email="-x@example.com"))
    write(app, made)
    execute(deployment, "UPDATE applications SET review_decision = 'decline',"
                        " review_reason = '\t=1+1', reviewed_by = '\r=2',"
                        f" reviewed_at_ns = 1 WHERE id = '{made.id}'")

    [row] = rows_of(exported(client, keys["read"], **bounds))

    assert (row["partner_id"], row["external_id"], row["applicant_name"], row["email"],
            row["review_reason"], row["reviewed_by"]) == (
        "'@SUM(A1:A9)", "'=HYPERLINK(\"http://x.test\")", "'+cmd |calc", "'-x@example.com",
        "'\t=1+1", "'\r=2")
    assert (row["review_decision"], row["state"]) == ("decline", "VA")


# -- refused requests ---------------------------------------------------------------------

#: The search's refusals, but of its page (limit, cursor: not export parameters).
EXPORT_BAD = [(q, f) for q, f in BAD if f not in ("limit", "cursor")] + [
    ({"limit": "10"}, "limit"), ({"cursor": "MTIz"}, "cursor"), ({"format": "csv"}, "format")]


@pytest.mark.parametrize(("query", "field"), EXPORT_BAD,
                         ids=[f"{f}-{n}" for n, (_, f) in enumerate(EXPORT_BAD)])
def test_a_bad_parameter_is_422_naming_it(client, keys, query, field):
    answer = exported(client, keys["read"], **query)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_a_parameter_given_twice_is_422(client, keys):
    answer = client.get(f"{PATH}?channel=web&channel=mobile", headers=auth(keys["read"]))

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["channel"]


def test_no_key_is_401_and_a_key_without_read_is_403_before_parameters(client, keys):
    assert client.get(PATH).status_code == 401
    for query in ({}, {"limit": "5"}):
        answer = exported(client, keys["operate"], **query)
        assert answer.status_code == 403
        assert answer.json()["type"] == "/problems/forbidden"
