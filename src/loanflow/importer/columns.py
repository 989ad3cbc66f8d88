"""CSV columns: flat names mapped onto the nested application schema of models.py.

The table names every leaf field of `models.Application` once (a test holds it
to the schema); what a column's cells must look like (number, whole number,
yes/no, text) and whether it is required come from the schema itself, so the
two cannot drift apart. An empty cell leaves its field out: the schema's
default applies, or the service reports the missing field.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import msgspec.inspect as mi

from loanflow.models import Application

#: Optional column: the line's own idempotency key (else derived from file and line).
KEY_COLUMN = "idempotency_key"

#: Column name -> path in the application. The README's "Importing files" lists it.
COLUMN_PATHS: dict[str, tuple[str, ...]] = {
    "first_name": ("applicant", "first_name"),
    "last_name": ("applicant", "last_name"),
    "date_of_birth": ("applicant", "date_of_birth"),
    "ssn": ("applicant", "ssn"),
    "email": ("applicant", "email"),
    "phone": ("applicant", "phone"),
    "address_line1": ("applicant", "address", "line1"),
    "address_line2": ("applicant", "address", "line2"),
    "city": ("applicant", "address", "city"),
    "state": ("applicant", "address", "state"),
    "zip": ("applicant", "address", "zip"),
    "employment_status": ("applicant", "employment_status"),
    "employer_name": ("applicant", "employer_name"),
    "annual_income": ("applicant", "annual_income"),
    "monthly_debt_payments": ("applicant", "monthly_debt_payments"),
    "monthly_housing_payment": ("applicant", "monthly_housing_payment"),
    "co_signer": ("applicant", "co_signer"),
    "loan_amount": ("loan", "amount"),
    "term_months": ("loan", "term_months"),
    "purpose": ("loan", "purpose"),
    "channel": ("channel",),
    "partner_id": ("partner_id",),
    "external_id": ("external_id",),
    "consent_credit_check": ("consent", "credit_check"),
    "consent_terms_version": ("consent", "terms_version"),
    "submitted_at": ("submitted_at",),
}

Kind = Literal["number", "integer", "boolean", "text"]
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]+")
_BOOLEANS = {"true": True, "yes": True, "y": True, "1": True,
             "false": False, "no": False, "n": False, "0": False}
_EXPECTED = {
    "number": "a number like 1234.56",
    "integer": "a whole number",
    "boolean": "true/false, yes/no or 1/0",
}


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One scalar field of the schema: where it lives, its kind, whether it is required."""

    path: tuple[str, ...]
    kind: Kind
    required: bool


def _leaves(struct: mi.StructType, prefix: tuple[str, ...], required: bool) -> Iterator[Leaf]:
    for field in struct.fields:
        path, kind = (*prefix, field.name), field.type
        if isinstance(kind, mi.UnionType):  # `X | None`: the X
            kind = next(t for t in kind.types if not isinstance(t, mi.NoneType))
        if isinstance(kind, mi.StructType):
            yield from _leaves(kind, path, required and field.required)
        else:
            yield Leaf(path, _kind_of(kind), required and field.required)


def _kind_of(kind: mi.Type) -> Kind:
    if isinstance(kind, mi.FloatType):
        return "number"
    if isinstance(kind, mi.IntType):
        return "integer"
    if isinstance(kind, mi.BoolType):
        return "boolean"
    return "text"  # str, enums, dates: checked by the service, sent as written


@functools.cache
def schema_leaves() -> dict[tuple[str, ...], Leaf]:
    """Every scalar field of `models.Application`, by path."""
    info = mi.type_info(Application)
    assert isinstance(info, mi.StructType)
    return {leaf.path: leaf for leaf in _leaves(info, (), True)}


class HeaderError(ValueError):
    """The header row cannot be mapped: nothing of the file is sent."""


class LineError(ValueError):
    """One line cannot be mapped; `errors` are `{"field", "message"}` like the service's."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class RowMapper:
    """Turns the cells of a data row into (idempotency key or None, application dict)."""

    def __init__(self, header: Sequence[str]) -> None:
        names = [name.strip() for name in header]
        leaves = schema_leaves()
        unknown = [n for n in names if n != KEY_COLUMN and n not in COLUMN_PATHS]
        if unknown:
            raise HeaderError(f"unknown columns {unknown}; expected names from: "
                              + ", ".join([*COLUMN_PATHS, KEY_COLUMN]))
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise HeaderError(f"columns named more than once: {repeated}")
        missing = [n for n, path in COLUMN_PATHS.items()
                   if leaves[path].required and n not in names]
        if missing:
            # Every line would be refused by the service: say so once, up front.
            raise HeaderError(f"required columns missing: {missing}")
        self.width = len(names)
        self._key_at = names.index(KEY_COLUMN) if KEY_COLUMN in names else None
        self._cells = [(i, name, leaves[COLUMN_PATHS[name]]) for i, name in enumerate(names)
                       if name != KEY_COLUMN]

    def map(self, row: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
        """The row's key (None when absent or empty) and application; LineError if unmappable."""
        if len(row) != self.width:
            raise LineError([{"field": "$", "message":
                              f"expected {self.width} columns, got {len(row)}"}])
        application: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        for i, name, leaf in self._cells:
            cell = row[i]
            if cell == "":
                continue
            try:
                value = _convert(cell, leaf.kind)
            except ValueError:
                errors.append({"field": name, "message": f"expected {_EXPECTED[leaf.kind]}"})
                continue
            node = application
            for part in leaf.path[:-1]:
                node = node.setdefault(part, {})
            node[leaf.path[-1]] = value
        if errors:
            raise LineError(errors)
        key = row[self._key_at] if self._key_at is not None else ""
        return key or None, application


def _convert(cell: str, kind: Kind) -> Any:
    """A cell as its JSON value; ValueError when it is not of the kind.

    The cell's text is left out of errors on purpose: the report holds no applicant data.
    """
    if kind == "text":
        return cell
    text = cell.strip()
    if kind == "number" and _NUMBER.fullmatch(text):
        return float(text)
    if kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "boolean" and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    raise ValueError(kind)
