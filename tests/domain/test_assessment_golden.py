"""Golden outputs: the stored document and velocity keys of a fixed set of applications.

Every case's bytes (the document the processor stores, `{"application": masked(app),
"assessment": assess(...)}` as JSON, then the velocity keys) are hashed and
compared with `golden/assessment_digests.txt`, written from the code before the domain
was optimised. A speed-up must leave every byte as it was.

The set: seeded synthetic applications, each of `BREAKERS` applied to several of them,
and hand-made edges (SSN and phone spellings, sub-cent and non-finite money, ZIP and
city quirks, birthdays on 29 February, flags and evidence passed in).

On a mismatch, see what changed with
    .venv/bin/python -m tests.domain.test_assessment_golden --show LABEL
(run it on both commits and diff). Rewrite the digests only for an intended change of
behaviour (a new rule, a library upgrade that changes its data):
    .venv/bin/python -m tests.domain.test_assessment_golden --write
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import math
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from loanflow.domain.assess import assess
from loanflow.domain.flags import FLAG_DUPLICATE_SSN, NO_FINDINGS, Findings
from loanflow.domain.product import load_product
from loanflow.loadgen.synthetic import BREAKERS, generate
from loanflow.models import Application, Envelope
from loanflow.pipeline.processor import stored_document
from loanflow.pipeline.velocity import Observation, VelocityCheck

GOLDEN = Path(__file__).parent / "golden" / "assessment_digests.txt"
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
SEED = 20261125
VALID_CASES = 400
BREAKER_REPEATS = 6
#: Received times one second apart from here, in ns.
T0_NS = 1_800_000_000 * 1_000_000_000
IPS = ("81.2.69.142", "8.8.8.8", "10.0.0.7", "::ffff:81.2.69.142", "2a00:1450:4001::1",
       "192.0.2.1", None, "not-an-ip", "127.0.0.1")

Edit = Callable[[Application], None]


class Case(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    application: Application
    today: dt.date = TODAY
    flags: tuple[str, ...] = ()
    client_ip: str | None = None
    channel: str = "web"


def _applicant(**changes: Any) -> Edit:
    def edit(app: Application) -> None:
        for name, value in changes.items():
            setattr(app.applicant, name, value)

    return edit


def _address(**changes: Any) -> Edit:
    def edit(app: Application) -> None:
        for name, value in changes.items():
            setattr(app.applicant.address, name, value)

    return edit


def _loan(**changes: Any) -> Edit:
    def edit(app: Application) -> None:
        for name, value in changes.items():
            setattr(app.loan, name, value)

    return edit


def _all_odd_money(app: Application) -> None:
    _applicant(annual_income=1.001, monthly_debt_payments=2.002,
               monthly_housing_payment=3.003)(app)
    _loan(amount=4.004)(app)


def _everything_wrong(app: Application) -> None:
    _applicant(ssn="000-00-0000", phone="nope", date_of_birth=dt.date(2030, 1, 1),
               annual_income=0.001)(app)
    _address(state="QQ", zip="1234")(app)
    _loan(amount=5.5, term_months=7)(app)
    app.consent.credit_check = False


#: Hand-made edges, set on a valid application after decoding (so the schema's checks,
#: which the API applies, are skipped as for a replay or a direct call).
EDGES: dict[str, Edit] = {
    "ssn-no-dashes": _applicant(ssn="123456789"),
    "ssn-one-dash": _applicant(ssn="123-456789"),
    "ssn-blocklisted": _applicant(ssn="078-05-1120"),
    "ssn-blocklisted-one-dash": _applicant(ssn="078-051120"),
    "ssn-blocklisted-compact": _applicant(ssn="219099999"),
    "ssn-all-parts-bad": _applicant(ssn="900-00-0000"),
    "ssn-area-000": _applicant(ssn="000-12-3456"),
    "ssn-area-666": _applicant(ssn="666123456"),
    "ssn-trailing-newline": _applicant(ssn="123-45-6789\n"),
    "ssn-arabic-digits": _applicant(ssn="\u0661\u0662\u0663-45-6789"),
    "ssn-dashes-misplaced": _applicant(ssn="12-345-6789"),
    "ssn-spaces": _applicant(ssn="123 45 6789"),
    "phone-e164": _applicant(phone="+14155550100"),
    "phone-dots": _applicant(phone="415.555.0100"),
    "phone-one-dash": _applicant(phone="1-415-555-0100"),
    "phone-padded": _applicant(phone="  (415)555-0100  "),
    "phone-plus-paren": _applicant(phone="+1 (415) 555-0100"),
    "phone-tel-uri": _applicant(phone="tel:+1-415-555-0100"),
    "phone-extension": _applicant(phone="415 555 0100 x123"),
    "phone-letters": _applicant(phone="1-800-FLOWERS"),
    "phone-toll-free": _applicant(phone="(800) 555-0100"),
    "phone-puerto-rico": _applicant(phone="+1 787 555 0100"),
    "phone-guam": _applicant(phone="+1 671 555 0100"),
    "phone-virgin-islands": _applicant(phone="340-555-0100"),
    "phone-canada": _applicant(phone="+1 416 555 0142"),
    "phone-bahamas": _applicant(phone="+1 242 555 0100"),
    "phone-uk": _applicant(phone="+44 20 7946 0958"),
    "phone-no-area": _applicant(phone="+1 123 555 0100"),
    "phone-too-long": _applicant(phone="555-0100-99"),
    "phone-words": _applicant(phone="call me maybe"),
    "phone-zeros": _applicant(phone="0000000"),
    "phone-arabic-digits": _applicant(phone="\u0664\u0661\u0665 555 0100"),
    "phone-fullwidth": _applicant(phone="\uff14\uff11\uff15-555-0100"),
    "money-sub-cent-amount": _loan(amount=12_345.675),
    "money-sub-cent-income": _applicant(annual_income=50_000.001),
    "money-sub-cent-debts": _applicant(monthly_debt_payments=0.005),
    "money-nan-housing": _applicant(monthly_housing_payment=math.nan),
    "money-inf-amount": _loan(amount=math.inf),
    "money-all-odd": _all_odd_money,
    "money-float-noise": _loan(amount=0.1 + 0.2 + 10_000),
    "money-large": _applicant(annual_income=999_999_999.99),
    "income-zero-employed": _applicant(annual_income=0.0, employment_status="employed"),
    "income-zero-retired-co-signed": _applicant(annual_income=0.0, employment_status="retired",
                                                co_signer=True),
    "income-zero-student-alone": _applicant(annual_income=0.0, employment_status="student",
                                            co_signer=False),
    "income-tiny": _applicant(annual_income=0.01),
    "zip-plus-four": _address(zip="94105-1234", city="San Francisco", state="CA"),
    "zip-city-elsewhere": _address(zip="94105", city="Springfield", state="CA"),
    "zip-city-odd-spelling": _address(zip="94105", city="SAN-FRANCISCO!", state="CA"),
    "zip-acceptable-city": _address(zip="00603", city="Ramey", state="PR"),
    "zip-inactive": _address(zip="01195", city="Springfield", state="MA"),
    "zip-unknown": _address(zip="00000"),
    "zip-other-state": _address(zip="10001"),
    "zip-unknown-state": _address(zip="94105", state="ZZ"),
    "zip-trailing-newline": _address(zip="94105\n"),
    "zip-arabic-digits": _address(zip="\u0669\u0664105"),
    "zip-bad-plus-four": _address(zip="94105-12"),
    "term-odd": _loan(term_months=13),
    "term-long": _loan(term_months=600),
    "amount-min": _loan(amount=1_000.0),
    "amount-max": _loan(amount=100_000.0),
    "amount-under": _loan(amount=999.99),
    "amount-over": _loan(amount=100_000.01),
    "age-leap-born": _applicant(date_of_birth=dt.date(2000, 2, 29)),
    "age-exactly-18": _applicant(date_of_birth=dt.date(2008, 11, 25)),
    "age-18-tomorrow": _applicant(date_of_birth=dt.date(2008, 11, 26)),
    "age-exactly-100": _applicant(date_of_birth=dt.date(1926, 11, 25)),
    "age-101": _applicant(date_of_birth=dt.date(1925, 11, 24)),
    "age-born-today": _applicant(date_of_birth=TODAY),
    "everything-wrong": _everything_wrong,
}


def _decode(data: dict[str, Any]) -> Application:
    return msgspec.convert(data, Application)


def cases() -> Iterator[Case]:
    """Every case, in a fixed order, each with a unique label."""
    rng = random.Random(SEED)
    valid = [generate(rng, now=NOW) for _ in range(VALID_CASES)]
    for i, data in enumerate(valid):
        flags = (FLAG_DUPLICATE_SSN,) if i % 17 == 0 else ()
        yield Case(label=f"valid-{i:03d}", application=_decode(data), flags=flags,
                   client_ip=IPS[i % len(IPS)], channel=data["channel"])
    for breaker in BREAKERS:
        for n in range(BREAKER_REPEATS):
            data = copy.deepcopy(valid[(n * 31 + len(breaker.__name__)) % VALID_CASES])
            breaker(data, rng, TODAY)
            yield Case(label=f"breaker{breaker.__name__}-{n}", application=_decode(data))
    for n, (name, edit) in enumerate(EDGES.items()):
        app = _decode(valid[n])
        edit(app)
        yield Case(label=f"edge-{name}", application=app, client_ip=IPS[n % len(IPS)])
    leap = _decode(valid[0])
    leap.applicant.date_of_birth = dt.date(2004, 2, 29)
    for day in (dt.date(2022, 2, 28), dt.date(2022, 3, 1), dt.date(2024, 2, 28),
                dt.date(2024, 2, 29)):
        yield Case(label=f"edge-leap-today-{day}", application=leap, today=day)
    yield Case(label="edge-unknown-flag", application=_decode(valid[1]),
               flags=("some.other_flag", FLAG_DUPLICATE_SSN))


class _KeyRecorder:
    """A velocity counter that keeps each key's application ids in memory.

    The keys are what this test pins; a real backend's counting has its own suite.
    """

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def observe(
        self, observations: Sequence[Observation], *, window_us: int, now_us: int
    ) -> list[int]:
        counts = []
        for o in observations:
            seen = self.ids.setdefault(o.key, [])
            if o.application_id not in seen:
                seen.append(o.application_id)
            counts.append(len(seen))
        return counts


def outputs() -> dict[str, bytes]:
    """Each case's label -> the bytes it must keep: stored document, velocity keys."""
    all_cases = list(cases())
    recorder = _KeyRecorder()
    velocity = VelocityCheck(recorder, hash_key=b"golden-velocity-key".ljust(32, b"."),
                             limit=2, ip_limit=3, window_s=600)
    envelopes = [
        Envelope(id=case.label, received_at_ns=T0_NS + i * 1_000_000_000, api_key_id="k",
                 idempotency_key=case.label, client_ip=case.client_ip, channel=case.channel,
                 sealed_application=b"")
        for i, case in enumerate(all_cases)
    ]
    findings = asyncio.run(velocity.check(
        [(e, c.application) for e, c in zip(envelopes, all_cases, strict=True)],
        now_ns=envelopes[-1].received_at_ns))
    keys: dict[str, list[str]] = {}
    for key, ids in recorder.ids.items():
        for app_id in ids:
            keys.setdefault(app_id, []).append(key)
    product = load_product()
    found: dict[str, bytes] = {}
    for case in all_cases:
        extra = findings.get(case.label, NO_FINDINGS) + Findings(flags=case.flags)
        assessment = assess(case.application, product=product, today=case.today,
                            flags=extra.flags, evidence=extra.evidence)
        document = msgspec.json.encode(stored_document(case.application, assessment))
        found[case.label] = b"\n".join([document, *(k.encode() for k in keys.get(case.label, []))])
    return found


def digests(found: dict[str, bytes]) -> dict[str, str]:
    return {label: hashlib.sha256(data).hexdigest()[:32] for label, data in found.items()}


def read_golden() -> dict[str, str]:
    lines = GOLDEN.read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def found() -> dict[str, bytes]:
    return outputs()


def test_every_document_and_velocity_key_is_byte_identical_to_the_golden_digests(
    found: dict[str, bytes],
) -> None:
    expected, actual = read_golden(), digests(found)
    assert actual.keys() == expected.keys(), "the case set changed: see the module docstring"
    differ = [label for label in expected if actual[label] != expected[label]]
    assert not differ, (
        f"{len(differ)} of {len(expected)} cases differ from the golden digests, first: "
        f"{differ[:10]}; show one with "
        f"`python -m tests.domain.test_assessment_golden --show {differ[0]}`"
    )


def test_the_cases_cover_stored_rejected_and_flagged_outcomes(found: dict[str, bytes]) -> None:
    documents = found.values()
    assert sum(b'"outcome":"stored"' in d for d in documents) > VALID_CASES // 2
    assert sum(b'"outcome":"rejected"' in d for d in documents) > len(BREAKERS) * 5
    assert any(b'"route":"decline_recommended"' in d for d in documents)
    assert any(b"above_velocity_limit" in d for d in documents)
    assert any(b"address.city_not_in_zip" in d for d in documents)


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--write"]:
        lines = [f"{label} {digest}" for label, digest in digests(outputs()).items()]
        header = "# label sha256[:32] of the case's bytes; see test_assessment_golden.py\n"
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(header + "\n".join(lines) + "\n")
    elif argv[:1] == ["--show"] and len(argv) == 2:
        sys.stdout.buffer.write(outputs()[argv[1]] + b"\n")
    else:
        raise SystemExit(f"expected --write or --show LABEL, got {argv}")


if __name__ == "__main__":
    _main(sys.argv[1:])
