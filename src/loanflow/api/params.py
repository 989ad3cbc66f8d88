"""Query parameters and filter values, each checked before it reaches a store.

A value a store cannot hold is the request's fault: it is answered 422 with the
field and what is expected, never passed on to fail as a 500 (Python's int() takes
Unicode digits such as `²` that str.isdigit() lets through; SQLite refuses integers
past 64 bits with OverflowError).
"""

from __future__ import annotations

from typing import overload

from starlette.requests import Request

from loanflow.errors import FieldError, SchemaInvalid


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
