"""Decode a submission body into an Application, or report every field error.

The fast path is one msgspec decode. msgspec stops at the first error, so
when it fails we walk the raw JSON against the schema once more to report
every wrong field together, as an API client fixing a form needs.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import msgspec

from loanflow.api.email_syntax import email_error
from loanflow.errors import FieldError, MalformedRequest, SchemaInvalid
from loanflow.models import MONEY_FIELDS, Application, to_cents

_decoder = msgspec.json.Decoder(Application)
_decode_any = msgspec.json.Decoder().decode
#: A key's closing quote, space, and its colon (in a body without escapes).
_SPACED_KEY_END = re.compile(rb'"\s+:')
_encode = msgspec.json.Encoder().encode


#: Characters no field may hold: controls (NUL breaks PostgreSQL), bidi overrides and
#: zero-width marks (they disguise names on screen), BOMs, lone surrogates (not UTF-8).
_FORBIDDEN_CHARS = re.compile(
    "[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
#: What a field holding one of them is told.
FORBIDDEN_CHARS_MESSAGE = "contains control, bidi, zero-width or invalid characters"
#: The same characters as they appear unescaped in a body that decoded. Controls cannot
#: (msgspec refuses them raw in a string; a raw tab or newline lies between tokens),
#: lone surrogates neither (not UTF-8): both come only as \u escapes.
_FORBIDDEN_RAW = re.compile(rb"\x7f|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa0-\xa9]|\xef\xbb\xbf")


def decode_application(body: bytes) -> Application:
    try:
        application = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise SchemaInvalid(field_errors(body, Application, exc)) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequest("body is nested too deeply") from None
    except UnicodeDecodeError:
        raise MalformedRequest("body is not valid UTF-8") from None
    _refuse_duplicate_keys(body)
    errors = format_errors(application, body)
    if errors:
        raise SchemaInvalid(errors)
    return application


def _refuse_duplicate_keys(body: bytes) -> None:
    """msgspec keeps the last of two equal keys; another parser may keep the first.

    Runs only on bodies that decoded as an Application. Without a backslash every
    quote delimits a string, so each quote right before a colon ends a key: their
    count is the body's keys, duplicates included. A generic decode (in C, far
    cheaper than the pairs hook) keeps one of equal keys: equal counts, no
    duplicate. Bodies with escapes or a space before a colon take the full check.
    """
    if (b"\\" not in body and _SPACED_KEY_END.search(body) is None
            and body.count(b'":') == _count_keys(_decode_any(body))):
        return
    _refuse_duplicate_keys_parsed(body)


def _count_keys(obj: dict[str, Any]) -> int:
    """Keys of an object and of the objects in it (the schema has no arrays)."""
    count = len(obj)
    for value in obj.values():
        if type(value) is dict:
            count += _count_keys(value)
    return count


def _refuse_duplicate_keys_parsed(body: bytes) -> None:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise MalformedRequest(f"duplicate key {key!r} in a JSON object")
                seen.add(key)
        return obj

    json.loads(body, object_pairs_hook=unique)


def format_errors(application: Application, body: bytes | None = None) -> list[FieldError]:
    """Checks a JSON schema type cannot express: characters, email syntax, 2 decimals.

    Given the `body` it decoded from, the walk over every string is skipped when the
    body holds neither an escape nor any forbidden character raw (most bodies).
    """
    plain = body is not None and b"\\" not in body and _FORBIDDEN_RAW.search(body) is None
    errors = [] if plain else list(_text_errors(application, ""))
    for group, name in MONEY_FIELDS:
        value = getattr(getattr(application, group), name)
        if to_cents(value) is None:
            errors.append(FieldError(f"{group}.{name}", "expected at most 2 decimals"))
    email_problem = email_error(application.applicant.email)
    if email_problem is not None:
        errors.append(FieldError("applicant.email", email_problem))
    return errors


def _text_errors(struct: msgspec.Struct, path: str) -> Iterator[FieldError]:
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, str):
            if has_forbidden_chars(value):
                yield FieldError(_join(path, name), FORBIDDEN_CHARS_MESSAGE)
        elif isinstance(value, msgspec.Struct):
            yield from _text_errors(value, _join(path, name))


def has_forbidden_chars(text: str) -> bool:
    """Whether `text` holds a character no text field may (_FORBIDDEN_CHARS)."""
    return _FORBIDDEN_CHARS.search(text) is not None


def canonical_bytes(application: Application) -> bytes:
    """One byte string per meaning: key order, spacing and number spelling don't count."""
    return _encode(application)


def field_errors(body: bytes, struct: type[msgspec.Struct],
                 first: msgspec.ValidationError) -> list[FieldError]:
    """Every wrong field of a `body` that did not decode as `struct` (`first`: what
    msgspec said, when the body is no JSON object to walk), naming fields, never values."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raw = None
    errors = _walk(raw, struct, "") if raw is not None else []
    return errors or [_from_msgspec("", first)]


def _walk(value: Any, struct: type[msgspec.Struct], path: str) -> list[FieldError]:
    if not isinstance(value, dict):
        return [FieldError(path or "$", f"expected an object, got {_json_type(value)}")]
    errors: list[FieldError] = []
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    hints = typing.get_type_hints(struct, include_extras=True)
    known = {f.encode_name for f in info.fields}
    for name in value:
        if name not in known:
            errors.append(FieldError(_join(path, str(name)), "unknown field"))
    for field in info.fields:
        where = _join(path, field.encode_name)
        if field.encode_name not in value:
            if field.required:
                errors.append(FieldError(where, "required"))
            continue
        item, hint = value[field.encode_name], hints[field.name]
        nested = _struct_of(hint)
        if nested is not None and item is not None:
            errors.extend(_walk(item, nested, where))
            continue
        try:
            msgspec.convert(item, hint, strict=True)
        except msgspec.ValidationError as exc:
            errors.append(_from_msgspec(where, exc, hint))
    return errors


def _struct_of(hint: Any) -> type[msgspec.Struct] | None:
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _from_msgspec(path: str, exc: msgspec.ValidationError, hint: Any = None) -> FieldError:
    message, _, at = str(exc).partition(" - at `$")
    if message.startswith("Invalid enum value"):
        # msgspec quotes the value, which may be PII put in the wrong field (an SSN as
        # the channel): answers and import reports name fields, never values.
        message = _expected_values(hint)
    suffix = at.rstrip("`").lstrip(".")
    return FieldError(_join(path, suffix) if suffix else (path or "$"), message)


def _expected_values(hint: Any) -> str:
    allowed = list(_literal_values(hint))
    if not allowed:
        return "expected one of the allowed values"
    return "expected one of " + ", ".join(repr(v) if isinstance(v, str) else str(v)
                                          for v in allowed)


def _literal_values(hint: Any) -> Iterator[object]:
    if typing.get_origin(hint) is typing.Literal:
        yield from typing.get_args(hint)
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        yield from (member.value for member in hint)
    else:  # Optional, Annotated, a list's items: look inside
        for arg in typing.get_args(hint):
            yield from _literal_values(arg)


def _join(path: str, name: str) -> str:
    if not path:
        return name
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"  # scopes[0]


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}.get(type(value), "value")
