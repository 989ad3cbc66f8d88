"""How an answer's type names a schema of the OpenAPI document that msgspec cannot see
from it: a part of a stored document passed through undecoded (`msgspec.Raw`) or kept
as a plain dict. openapi.py adds every component named here (`DOCUMENT_PARTS`)."""

from __future__ import annotations

from typing import Any

import msgspec

#: Where the document keeps its schemas.
REF_TEMPLATE = "#/components/schemas/{name}"


def ref(name: str, *, nullable: bool = False) -> msgspec.Meta:
    """The annotation of a field whose schema is the component `name` (or null)."""
    schema: dict[str, Any] = {"$ref": REF_TEMPLATE.format(name=name)}
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return msgspec.Meta(extra_json_schema=schema)


def array_of(name: str, *, nullable: bool = False) -> msgspec.Meta:
    """The annotation of a field whose schema is an array of the component `name`."""
    schema: dict[str, Any] = {"type": "array",
                              "items": {"$ref": REF_TEMPLATE.format(name=name)}}
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return msgspec.Meta(extra_json_schema=schema)
