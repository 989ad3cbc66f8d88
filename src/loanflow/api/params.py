"""Query parameters and filter values, each checked before it reaches a store.

A value a store cannot hold is the request's fault: it is answered 422 with the
field and what is expected, never passed on to fail as a 500 (Python's int() takes
Unicode digits such as `²` that str.isdigit() lets through; SQLite refuses integers
past 64 bits with OverflowError) or a 503 (PostgreSQL refuses a NUL in text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import overload

from starlette.requests import Request

from loanflow.errors import FieldError, SchemaInvalid

#: Times are kept as 64-bit nanoseconds since the epoch (1677-09-21 to 2262-04-11):
#: a filter outside these round bounds could not be compared with any stored time.
EARLIEST = dt.datetime(1678, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2262, 1, 1, tzinfo=dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _invalid(field: str, message: str) -> SchemaInvalid:
    return SchemaInvalid([FieldError(field, message)])


def whole_number(text: str, field: str, *, minimum: int, maximum: int) -> int:
    """`text` as an int within bounds: ASCII digits only, at most as long as `maximum`."""
    expected = f"expected a whole number from {minimum} to {maximum}"
    # Checked before int(): it would read `²` or `٣`, and parse any length.
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(maximum)):
        raise _invalid(field, expected)
    value = int(text)
    if not minimum <= value <= maximum:
        raise _invalid(field, expected)
    return value


@overload
def int_param(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    ...


@overload
def int_param(
    request: Request, name: str, *, default: None, minimum: int, maximum: int
) -> int | None:
    ...


def int_param(
    request: Request, name: str, *, default: int | None, minimum: int, maximum: int
) -> int | None:
    """The query parameter `name` as an int within bounds; `default` when absent or empty."""
    text = request.query_params.get(name)
    if not text:
        return default
    return whole_number(text, name, minimum=minimum, maximum=maximum)


def moment_ns(moment: dt.datetime, field: str) -> int:
    """Nanoseconds since the epoch; a time without a zone is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if not EARLIEST <= moment < LATEST:
        raise _invalid(field, f"expected a time from {EARLIEST:%Y-%m-%d} to before "
                              f"{LATEST:%Y-%m-%d}")
    return (moment - _EPOCH) // _MICROSECOND * 1000


def time_param(request: Request, name: str) -> int | None:
    """The query parameter `name`, an RFC 3339 time, as nanoseconds; None when absent."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(name, "expected an RFC 3339 time") from None
    return moment_ns(moment, name)


def text_value(value: str | None, field: str) -> str | None:
    """A filter or reason text; None when empty. A NUL is refused in both modes alike:
    PostgreSQL text cannot hold one (SQLite can)."""
    if not value:
        return None
    if "\x00" in value:
        raise _invalid(field, "expected text without NUL characters")
    return value


def text_param(request: Request, name: str) -> str | None:
    return text_value(request.query_params.get(name), name)


def only_params(request: Request, allowed: Collection[str]) -> None:
    """Refuse a parameter not in `allowed`, or one given twice: a typo must not widen a
    list to everything, nor a second value be ignored."""
    query = request.query_params
    for name in query:
        if name not in allowed:
            raise _invalid(name, "unknown parameter; expected among " + ", ".join(sorted(allowed)))
        if len(query.getlist(name)) > 1:
            raise _invalid(name, "expected the parameter once")
