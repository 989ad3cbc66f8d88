"""Business rules: each rule's code, the edges of each range, all violations together."""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

import msgspec
import phonenumbers
import pytest

from loanflow.domain.rules import (
    RULE_CODES,
    RULES,
    Violation,
    check_application,
    parse_phone,
)
from loanflow.models import Application
from tests.conftest import SAMPLE_APPLICATION

TODAY = dt.date(2026, 11, 25)

#: The DESIGN example application, shared with the API tests.
BASE: dict[str, Any] = SAMPLE_APPLICATION


def application(**changes: Any) -> Application:
    """The example application with dotted-path changes, e.g. applicant__ssn='...'."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    return msgspec.convert(data, Application)


def codes(app: Application, today: dt.date = TODAY) -> list[str]:
    return [v.code for v in check_application(app, today=today)]


def test_the_example_application_breaks_no_rule() -> None:
    assert check_application(application(), today=TODAY) == ()


# -- age ---------------------------------------------------------------------------


def test_date_of_birth_in_the_future_is_rejected() -> None:
    assert codes(application(applicant__date_of_birth="2026-11-26")) == [
        "applicant.date_of_birth.in_future"
    ]


def test_applicant_one_day_short_of_18_is_rejected() -> None:
    assert codes(application(applicant__date_of_birth="2008-11-26")) == [
        "applicant.age.under_minimum"
    ]


def test_applicant_turning_18_today_is_accepted() -> None:
    assert codes(application(applicant__date_of_birth="2008-11-25")) == []


def test_applicant_aged_100_is_accepted() -> None:
    assert codes(application(applicant__date_of_birth="1925-11-26")) == []


def test_applicant_turning_101_today_is_rejected() -> None:
    assert codes(application(applicant__date_of_birth="1925-11-25")) == [
        "applicant.age.over_maximum"
    ]


def test_leap_day_birthday_turns_18_on_march_first() -> None:
    app = application(applicant__date_of_birth="2008-02-29")
    assert codes(app, today=dt.date(2026, 2, 28)) == ["applicant.age.under_minimum"]
    assert codes(app, today=dt.date(2026, 3, 1)) == []


@pytest.mark.parametrize("dob", ["0001-01-01", "9999-12-31"])
def test_extreme_dates_of_birth_are_rejections_not_crashes(dob: str) -> None:
    assert len(codes(application(applicant__date_of_birth=dob))) == 1


# -- SSN ---------------------------------------------------------------------------


@pytest.mark.parametrize("ssn", ["000-12-3456", "900-12-3456", "987-65-4321"])
def test_ssn_with_an_unissued_area_is_rejected(ssn: str) -> None:
    assert codes(application(applicant__ssn=ssn)) == ["applicant.ssn.invalid_area"]


def test_ssn_with_area_666_is_rejected() -> None:
    assert codes(application(applicant__ssn="666-45-6789")) == ["applicant.ssn.invalid_area"]


def test_ssn_with_group_00_is_rejected() -> None:
    assert codes(application(applicant__ssn="123-00-6789")) == ["applicant.ssn.invalid_group"]


def test_ssn_with_serial_0000_is_rejected() -> None:
    assert codes(application(applicant__ssn="123-45-0000")) == ["applicant.ssn.invalid_serial"]


def test_ssn_of_all_zeros_reports_each_invalid_part() -> None:
    assert codes(application(applicant__ssn="000000000")) == [
        "applicant.ssn.invalid_area",
        "applicant.ssn.invalid_group",
        "applicant.ssn.invalid_serial",
    ]


@pytest.mark.parametrize("ssn", ["078-05-1120", "078051120", "078-051120"])
def test_publicly_misused_ssn_is_rejected_in_any_spelling(ssn: str) -> None:
    assert codes(application(applicant__ssn=ssn)) == ["applicant.ssn.blocklisted"]


def test_ssn_without_dashes_is_accepted() -> None:
    assert codes(application(applicant__ssn="123456789")) == []


def test_ssn_with_a_trailing_newline_is_rejected() -> None:
    # The schema's $ admits a trailing newline.
    assert codes(application(applicant__ssn="123-45-6789\n")) == ["applicant.ssn.invalid_format"]


def built_in_code(**applicant_changes: Any) -> Application:
    """An Application made in code, past the schema (defence in depth for the rules)."""
    app = application()
    applicant = msgspec.structs.replace(app.applicant, **applicant_changes)
    return msgspec.structs.replace(app, applicant=applicant)


def test_ssn_in_non_ascii_digits_is_rejected() -> None:
    # The schema refuses Arabic-Indic digits; an Application built in code still fails here.
    arabic = "١٢٣-٤٥-٦٧٨٩"
    assert codes(built_in_code(ssn=arabic)) == ["applicant.ssn.invalid_format"]


# -- phone, state, ZIP -------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["+1 123 555 0100", "not a phone", "+44 20 7946 0958", "+1 416 555 0142", "0000000"],
)
def test_phone_that_is_not_a_valid_us_number_is_rejected(phone: str) -> None:
    assert codes(application(applicant__phone=phone)) == ["applicant.phone.invalid"]


@pytest.mark.parametrize("phone", ["(415) 555-0123", "415.555.0123", "+14155550123"])
def test_us_phone_in_any_common_spelling_is_accepted(phone: str) -> None:
    assert codes(application(applicant__phone=phone)) == []


def test_fast_phone_parsing_reads_the_same_number_as_phonenumbers() -> None:
    rng = random.Random(12)
    for _ in range(2_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice((9, 10, 10, 11))))
        prefix = rng.choice(("", "1", "+1", "+1 ", "1-", "+"))
        sep = rng.choice(("", " ", "-", ".", "  "))
        area = f"({digits[:3]})" if rng.random() < 0.3 else digits[:3]
        text = f"{prefix}{area}{sep}{digits[3:6]}{sep}{digits[6:]}" + rng.choice(("", " "))
        try:
            expected = phonenumbers.parse(text, "US")
        except phonenumbers.NumberParseException:
            continue
        got = parse_phone(text)
        assert (got.country_code, got.national_number) == (
            expected.country_code,
            expected.national_number,
        ), text


def test_phone_in_a_us_territory_is_accepted() -> None:
    assert codes(application(applicant__phone="+1 787 555 0100")) == []


def test_unknown_state_code_is_rejected() -> None:
    assert codes(application(applicant__address__state="XX")) == ["applicant.address.state.unknown"]


def test_territory_address_is_accepted() -> None:
    app = application(
        applicant__address__state="PR",
        applicant__address__zip="00907",
        applicant__address__city="San Juan",
    )
    assert codes(app) == []


def test_zip_that_does_not_exist_is_rejected() -> None:
    assert codes(application(applicant__address__zip="00000")) == ["applicant.address.zip.unknown"]


@pytest.mark.parametrize("zip_code", ["94105\n", "٩٤١٠٥"])
def test_zip_that_is_not_ascii_digits_is_rejected(zip_code: str) -> None:
    address = msgspec.structs.replace(application().applicant.address, zip=zip_code)
    assert codes(built_in_code(address=address)) == [
        "applicant.address.zip.invalid_format"
    ]


def test_zip_in_another_state_is_rejected() -> None:
    assert codes(application(applicant__address__zip="10001")) == [
        "applicant.address.zip.state_mismatch"
    ]


def test_zip_no_longer_in_service_is_rejected() -> None:
    app = application(
        applicant__address__state="MA",
        applicant__address__zip="01195",
        applicant__address__city="Springfield",
    )
    assert codes(app) == ["applicant.address.zip.inactive"]


def test_zip_plus_four_is_accepted() -> None:
    assert codes(application(applicant__address__zip="94105-1234")) == []


def test_zip_is_not_called_a_mismatch_when_the_state_is_unknown() -> None:
    assert codes(application(applicant__address__state="ZZ")) == ["applicant.address.state.unknown"]


# -- loan, consent, income ---------------------------------------------------------


@pytest.mark.parametrize("amount", [0.0, 999.99])
def test_amount_below_1000_is_rejected(amount: float) -> None:
    assert codes(application(loan__amount=amount)) == ["loan.amount.below_minimum"]


@pytest.mark.parametrize("amount", [1000.0, 100_000.0])
def test_amount_at_either_limit_is_accepted(amount: float) -> None:
    assert codes(application(loan__amount=amount)) == []


def test_amount_above_100000_is_rejected() -> None:
    assert codes(application(loan__amount=100_000.01)) == ["loan.amount.above_maximum"]


@pytest.mark.parametrize("term", [1, 18, 120, 600])
def test_term_not_offered_is_rejected(term: int) -> None:
    assert codes(application(loan__term_months=term)) == ["loan.term_months.not_offered"]


@pytest.mark.parametrize("term", [12, 24, 36, 48, 60, 72, 84])
def test_every_offered_term_is_accepted(term: int) -> None:
    assert codes(application(loan__term_months=term)) == []


def test_missing_credit_check_consent_is_rejected() -> None:
    assert codes(application(consent__credit_check=False)) == ["consent.credit_check.missing"]


def test_employed_applicant_without_income_is_rejected() -> None:
    assert codes(application(applicant__annual_income=0.0)) == [
        "applicant.annual_income.not_positive"
    ]


@pytest.mark.parametrize("status", ["retired", "student"])
def test_retiree_or_student_without_income_is_accepted_with_a_co_signer(status: str) -> None:
    app = application(
        applicant__annual_income=0.0,
        applicant__employment_status=status,
        applicant__co_signer=True,
    )
    assert codes(app) == []


def test_retiree_without_income_or_co_signer_is_rejected() -> None:
    app = application(applicant__annual_income=0.0, applicant__employment_status="retired")
    assert codes(app) == ["applicant.annual_income.not_positive"]


def test_unemployed_applicant_with_a_co_signer_still_needs_income() -> None:
    app = application(
        applicant__annual_income=0.0,
        applicant__employment_status="unemployed",
        applicant__co_signer=True,
    )
    assert codes(app) == ["applicant.annual_income.not_positive"]


def test_sub_cent_money_is_a_rejection_not_a_crash() -> None:
    app = application(loan__amount=15000.005, applicant__annual_income=0.001)
    assert codes(app) == ["applicant.annual_income.not_whole_cents", "loan.amount.not_whole_cents"]


# -- reporting ---------------------------------------------------------------------

BROKEN_EVERYWHERE = {
    "applicant__date_of_birth": "2015-01-01",
    "applicant__ssn": "666-00-0000",
    "applicant__phone": "+1 123 555 0100",
    "applicant__address__state": "XX",
    "applicant__address__zip": "00000",
    "applicant__annual_income": 0.0,
    "loan__amount": 500.0,
    "loan__term_months": 18,
    "consent__credit_check": False,
}


def test_all_violations_are_reported_together() -> None:
    assert codes(application(**BROKEN_EVERYWHERE)) == [
        "applicant.age.under_minimum",
        "applicant.ssn.invalid_area",
        "applicant.ssn.invalid_group",
        "applicant.ssn.invalid_serial",
        "applicant.phone.invalid",
        "applicant.address.state.unknown",
        "applicant.address.zip.unknown",
        "applicant.annual_income.not_positive",
        "loan.amount.below_minimum",
        "loan.term_months.not_offered",
        "consent.credit_check.missing",
    ]


def test_each_violation_names_the_field_its_code_is_about() -> None:
    for violation in check_application(application(**BROKEN_EVERYWHERE), today=TODAY):
        assert violation.code.startswith(violation.field) or violation.field.endswith(
            "date_of_birth"
        )


def test_no_message_echoes_the_ssn_or_date_of_birth() -> None:
    ssn, dob = "666-01-0000", "2015-03-07"
    app = application(applicant__ssn=ssn, applicant__date_of_birth=dob)
    messages = " ".join(v.message for v in check_application(app, today=TODAY))
    for secret in (ssn, ssn.replace("-", ""), dob, "03/07/2015", "2015"):
        assert secret not in messages


def test_every_reported_code_is_declared_by_its_rule() -> None:
    reported = set(codes(application(**BROKEN_EVERYWHERE)))
    assert reported <= RULE_CODES
    assert len(RULE_CODES) == sum(len(rule.codes) for rule in RULES)


def test_violations_encode_as_json() -> None:
    violations = check_application(application(consent__credit_check=False), today=TODAY)
    decoded = msgspec.json.decode(msgspec.json.encode(violations), type=tuple[Violation, ...])
    assert decoded == violations
