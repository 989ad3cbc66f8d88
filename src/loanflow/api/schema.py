"""Decode a submission body into an Application, or report every field error.

The fast path is one msgspec decode. msgspec stops at the first error, so
when it fails we walk the raw JSON against the schema once more to report
every wrong field together, as an API client fixing a form needs.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec
from email_validator import EmailNotValidError, validate_email

from loanflow.errors import FieldError, MalformedRequest, SchemaInvalid
from loanflow.models import MONEY_FIELDS, Application, to_cents

_decoder = msgspec.json.Decoder(Application)
_encode = msgspec.json.Encoder().encode


def decode_application(body: bytes) -> Application:
    try:
        application = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise SchemaInvalid(_all_field_errors(body, exc)) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    errors = format_errors(application)
    if errors:
        raise SchemaInvalid(errors)
    return application


def format_errors(application: Application) -> list[FieldError]:
    """Checks a JSON schema type cannot express: email syntax, at most 2 decimals."""
    errors = []
    for group, name in MONEY_FIELDS:
        value = getattr(getattr(application, group), name)
        if to_cents(value) is None:
            errors.append(FieldError(f"{group}.{name}", "expected at most 2 decimals"))
    try:
        validate_email(application.applicant.email, check_deliverability=False)
    except EmailNotValidError as exc:
        errors.append(FieldError("applicant.email", str(exc)))
    return errors


def canonical_bytes(application: Application) -> bytes:
    """One byte string per meaning: key order, spacing and number spelling don't count."""
    return _encode(application)


def _all_field_errors(body: bytes, first: msgspec.ValidationError) -> list[FieldError]:
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raw = None
    errors = _walk(raw, Application, "") if raw is not None else []
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
            errors.append(_from_msgspec(where, exc))
    return errors


def _struct_of(hint: Any) -> type[msgspec.Struct] | None:
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _from_msgspec(path: str, exc: msgspec.ValidationError) -> FieldError:
    message, _, at = str(exc).partition(" - at `$")
    suffix = at.rstrip("`").lstrip(".")
    return FieldError(_join(path, suffix) if suffix else (path or "$"), message)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}.get(type(value), "value")
