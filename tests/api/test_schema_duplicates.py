"""The quick duplicate-key check judges every body as the full parse does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanflow.api.schema import decode_application
from loanflow.errors import MalformedRequest
from tests.conftest import sample_application

FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
#: Each object of an application, by its path.
_OBJECTS = ((), ("applicant",), ("applicant", "address"), ("loan",), ("consent",))
_SPACES = st.sampled_from(["", " ", "\t", "\n  "])


def _dumps(value: Any, space: str, duplicate: tuple[tuple[str, ...], str] | None,
           path: tuple[str, ...] = ()) -> str:
    """JSON with `space` before every colon; `duplicate` repeats one key of one object."""
    if not isinstance(value, dict):
        return json.dumps(value)
    pairs = [f"{json.dumps(k)}{space}:{_dumps(v, space, duplicate, (*path, k))}"
             for k, v in value.items()]
    if duplicate is not None and duplicate[0] == path:
        key = duplicate[1]
        pairs.append(f"{json.dumps(key)}{space}:{_dumps(value[key], space, None)}")
    return "{" + ",".join(pairs) + "}"


@FAST
@given(st.sampled_from(_OBJECTS), st.data(), _SPACES)
def test_a_repeated_key_in_any_object_is_refused(path: tuple[str, ...], data: st.DataObject,
                                                space: str) -> None:
    application = sample_application()
    target: Any = application
    for name in path:
        target = target[name]
    key = data.draw(st.sampled_from(sorted(target)))

    body = _dumps(application, space, (path, key)).encode()

    with pytest.raises(MalformedRequest, match="duplicate key"):
        decode_application(body)


@FAST
@given(_SPACES, st.booleans())
def test_a_body_without_repeated_keys_passes(space: str, escaped: bool) -> None:
    name = "Zo\u00eb" if escaped else "Zoe"
    # json.dumps escapes the name: an escape anywhere sends the body to the full check.
    body = _dumps(sample_application(applicant__first_name=name), space, None)

    assert decode_application(body.encode()).applicant.first_name == name
