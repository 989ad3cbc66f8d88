"""The quick email check agrees with email-validator on every address, message included."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loanflow.api.email_syntax import MAX_LENGTH, email_error

FAST = settings(max_examples=500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Characters near the shortcut's edges: its own, atext it leaves out, and what is invalid.
_CHARS = "aZ09._%+-!#'~ @\"()[],;:\\é\u200b"
_LABELS = st.one_of(
    st.text(alphabet="abz09-", min_size=0, max_size=8),
    st.sampled_from(["com", "test", "local", "invalid", "localhost", "onion", "123", "c",
                     "x" * 63, "x" * 64, "xn--nxasmq6b", "xn--zz", "-a", "a-", "Gmail"]),
)
_DOMAINS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join)
_LOCALS = st.text(alphabet=_CHARS, min_size=0, max_size=12) | st.sampled_from(
    ["x" * 64, "x" * 65, "a..b", ".a", "a.", "first.last", "a+tag", "100%"])
_ADDRESSES = st.one_of(
    st.tuples(_LOCALS, _DOMAINS).map("@".join),
    st.text(alphabet=_CHARS, max_size=30),
    st.tuples(st.integers(1, 260), _DOMAINS).map(lambda t: "a" * t[0] + "@" + t[1]),
)


def reference(address: str) -> str | None:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


@FAST
@given(_ADDRESSES)
@example("jane.doe@example.com")
@example("a" * (MAX_LENGTH - len("@example.com")) + "@example.com")
@example("a" * (MAX_LENGTH - len("@example.com") + 1) + "@example.com")
@example("jane@localhost")
@example("jane@example.test")
@example("jane@exa_mple.com")
def test_quick_check_gives_email_validators_verdict_and_message(address: str) -> None:
    assert email_error(address) == reference(address)


def test_a_cached_domain_still_refuses_a_bad_local_part() -> None:
    assert email_error("fine@example.com") is None
    assert email_error("two..dots@example.com") == reference("two..dots@example.com")
    assert email_error("two..dots@example.com") is not None
