"""The shortcut past the per-string character check judges every body as the walk does."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanflow.api.schema import format_errors
from loanflow.models import Application
from tests.conftest import sample_application

FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Forbidden characters, their neighbours in Unicode, and plain text.
_CHARS = st.sampled_from(
    "ab \x00\x1f\x7f\x80\u200a\u200b\u200f\u2010\u2029\u202a\u202e\u202f\u205f\u2060"
    "\u2069\u206a\ufeff\ufefe\ud800\udfffé€\\\""
)
_FIELDS = ("applicant__first_name", "applicant__address__line1", "external_id")


@FAST
@given(st.text(_CHARS, min_size=1, max_size=6), st.sampled_from(_FIELDS), st.booleans())
def test_skipping_the_walk_never_changes_the_errors(text: str, field: str, ascii_only: bool):
    body = json.dumps(sample_application(**{field: "x" + text}),
                      ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        application = msgspec.json.decode(body, type=Application)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return  # a raw lone surrogate is not UTF-8: refused before any check
    assert format_errors(application, body) == format_errors(application)
