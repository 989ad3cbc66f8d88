"""CSV columns: every schema field has one, cells are converted, what cannot be is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loanflow.importer.columns import (
    COLUMN_PATHS,
    KEY_COLUMN,
    HeaderError,
    LineError,
    RowMapper,
    schema_leaves,
)
from tests.importer.files import applications, csv_row

HEADER = list(COLUMN_PATHS)


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    return node


def test_every_field_of_the_schema_has_exactly_one_column() -> None:
    assert sorted(COLUMN_PATHS.values()) == sorted(schema_leaves())
    assert len(set(COLUMN_PATHS.values())) == len(COLUMN_PATHS)


def test_a_synthetic_application_survives_the_round_trip_through_cells() -> None:
    [app] = applications(1, seed=3)
    app["applicant"]["address"]["line2"] = "Apt 4"
    app["partner_id"] = "partner-001"
    row = csv_row(app)

    key, mapped = RowMapper(HEADER).map([row[name] for name in HEADER])

    assert key is None
    assert mapped == _without_nulls(app)  # an empty cell leaves the field out


def test_numbers_booleans_and_empty_cells_are_converted() -> None:
    mapper = RowMapper(HEADER)
    row = dict.fromkeys(HEADER, "")
    row.update(annual_income=" 96000.50 ", term_months="36", co_signer="Yes",
               consent_credit_check="0", first_name=" Ada ")

    _, app = mapper.map([row[n] for n in HEADER])

    assert app["applicant"]["annual_income"] == 96000.5
    assert app["loan"]["term_months"] == 36
    assert app["applicant"]["co_signer"] is True
    assert app["consent"]["credit_check"] is False
    assert app["applicant"]["first_name"] == " Ada "  # text is sent as written
    assert "address" not in app["applicant"]  # every address cell empty: left out


def test_every_unconvertible_cell_of_a_line_is_reported_together() -> None:
    row = dict.fromkeys(HEADER, "")
    row.update(annual_income="lots", loan_amount="1,500", term_months="36.5",
               co_signer="maybe")

    with pytest.raises(LineError) as caught:
        RowMapper(HEADER).map([row[n] for n in HEADER])

    assert caught.value.errors == [
        {"field": "annual_income", "message": "expected a number like 1234.56"},
        {"field": "co_signer", "message": "expected true/false, yes/no or 1/0"},
        {"field": "loan_amount", "message": "expected a number like 1234.56"},
        {"field": "term_months", "message": "expected a whole number"},
    ]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(LineError, match=f"expected {len(HEADER)} columns, got 3"):
        RowMapper(HEADER).map(["a", "b", "c"])


def test_the_key_column_is_optional_and_an_empty_key_means_derived() -> None:
    mapper = RowMapper([KEY_COLUMN, *HEADER])
    row = ["crm-7", *[""] * len(HEADER)]

    assert mapper.map(row)[0] == "crm-7"
    assert mapper.map(["", *row[1:]])[0] is None


@pytest.mark.parametrize(("header", "message"), [
    ([*HEADER, "adress_line1"], r"unknown columns \['adress_line1'\]"),
    ([*HEADER, "city"], r"more than once: \['city'\]"),
    ([n for n in HEADER if n not in ("ssn", "zip")], r"required columns missing: \['ssn', 'zip'\]"),
])
def test_a_header_that_cannot_be_mapped_is_refused_before_anything_is_sent(
    header: list[str], message: str
) -> None:
    with pytest.raises(HeaderError, match=message):
        RowMapper(header)


def test_the_readme_lists_every_column() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Importing files", 1)[1].split("\n## ", 1)[0]

    assert [n for n in [*COLUMN_PATHS, KEY_COLUMN] if f"`{n}`" not in section] == []


def test_optional_columns_may_be_left_out_of_the_header() -> None:
    optional = {"address_line2", "employer_name", "monthly_debt_payments",
                "monthly_housing_payment", "co_signer", "partner_id", "external_id",
                "submitted_at"}
    assert {n for n, p in COLUMN_PATHS.items() if not schema_leaves()[p].required} == optional

    RowMapper([n for n in HEADER if n not in optional])
