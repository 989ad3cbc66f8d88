"""The OpenAPI 3.1 document, generated from the operations table (api/operations.py) and
the msgspec types the handlers decode and encode with.

Answer objects are closed (`additionalProperties: false`): a field an answer carries that
the document lacks is a breach of the contract (tests/api/test_openapi.py checks live
answers against it). Each problem answer lists the problem types it may carry.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import msgspec

from loanflow import __version__
from loanflow.api.applications import DOCUMENT_PARTS
from loanflow.api.components import REF_TEMPLATE
from loanflow.api.operations import (
    EXAMPLE_APPLICATION,
    JSON,
    OPERATIONS,
    Answer,
    Operation,
    Param,
)
from loanflow.api.problems import PROBLEM_JSON, TYPE_BASE, Problem
from loanflow.domain.enrich import Enrichment
from loanflow.domain.trace import TraceEntry
from loanflow.errors import LoanflowError, Unavailable

#: Problem types answered outside the error tree (api/problems.py): Starlette's HTTP
#: errors, the HTTP protocol's refusal of an oversized head, and an unexpected error.
OTHER_PROBLEMS = {
    "method-not-allowed": (405, "Method not allowed"),
    "http-error": (400, "An HTTP error of the framework"),
    "internal": (500, "Internal error: it was logged; retry later"),
}

DESCRIPTION = """\
Fast, durable loan-application ingestion. Authenticate with an API key
(`Authorization: Bearer lf_…`, made by `loanflow keys create --scopes …`); each operation
names the scope it needs (`submit`, `read`, `operate`). The dashboard's session cookie
works too (a state change then needs its `X-CSRF-Token`).

Every error is `application/problem+json` (RFC 9457) with a stable `type` (the
`ProblemType` schema lists them all); a 422 `validation-error` lists every wrong field
in `errors`. A request head over 64 KiB or 100 lines is refused 431
`headers-too-large`. Metrics snapshots and events stream over the WebSocket
`/v1/live` (scope `read`), which OpenAPI does not describe.
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _alternatives(kind: Any) -> tuple[Any, ...]:
    """The members of a union of answer types (each its own schema), else the type."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def _problem_classes() -> dict[str, type[LoanflowError]]:
    """Every error class with a problem type of its own, by type."""
    found: dict[str, type[LoanflowError]] = {}
    pending: list[type[LoanflowError]] = [LoanflowError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        kind = getattr(cls, "type", None)
        if isinstance(kind, str) and kind not in found and cls.status != 500:
            found[kind] = cls
    return found


class _Schemas:
    """Every type's JSON Schema from one `schema_components` call, components shared."""

    def __init__(self) -> None:
        self._types: list[Any] = []

    def add(self, kind: Any) -> int:
        self._types.append(kind)
        return len(self._types) - 1

    def generate(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        schemas, components = msgspec.json.schema_components(
            self._types, ref_template=REF_TEMPLATE)
        return list(schemas), components


def _parameter(param: Param, schema: dict[str, Any]) -> dict[str, Any]:
    if param.default is not None:
        schema = {**schema, "default": param.default}
    out: dict[str, Any] = {"name": param.name, "in": param.where,
                           "required": param.required or param.where == "path",
                           "schema": schema}
    if param.description:
        out["description"] = param.description
    return out


def _problem_answers(op: Operation) -> dict[str, Any]:
    by_status: dict[int, list[type[LoanflowError]]] = {}
    for cls in op.problems:
        by_status.setdefault(cls.status, []).append(cls)
    bodies = dict(op.problem_bodies)
    answers: dict[str, Any] = {}
    for status, classes in sorted(by_status.items()):
        kinds = sorted({TYPE_BASE + c.type for c in classes})
        titles = sorted({c.title for c in classes})
        body = bodies.get(status, Problem)
        schema = {"allOf": [_ref(body.__name__),
                            {"properties": {"type": {"enum": kinds}}}]}
        answer: dict[str, Any] = {"description": "; ".join(titles),
                                  "content": {PROBLEM_JSON: {"schema": schema}}}
        if any(hasattr(c, "retry_after_s") or issubclass(c, Unavailable) for c in classes):
            answer["headers"] = {"Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1}}}
        answers[str(status)] = answer
    return answers


def _answer(answer: Answer, schemas: list[dict[str, Any]], index: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.type is None:
        out["content"] = {answer.media_type: {"schema": {"type": "string"}}}
    else:
        found = [schemas[i] for i in index]
        schema = found[0] if len(found) == 1 else {"anyOf": found}
        out["content"] = {answer.media_type: {"schema": schema}}
    return out


def _close(schema: dict[str, Any]) -> None:
    """An object with named properties allows no other (msgspec leaves it open unless
    the Struct forbids unknown fields when decoding)."""
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)


def _masked(components: dict[str, Any]) -> None:
    """MaskedApplication: an Application as the API shows it, SSN and date of birth masked."""
    applicant = copy.deepcopy(components["Applicant"])
    applicant["title"] = "MaskedApplicant"
    applicant["properties"]["ssn"] = {"type": "string", "description": "Masked: ***-**-6789"}
    applicant["properties"]["date_of_birth"] = {"type": "string",
                                                "description": "Masked: ****-**-**"}
    application = copy.deepcopy(components["Application"])
    application["title"] = "MaskedApplication"
    application["description"] = "An application as stored and shown: PII masked."
    application["properties"]["applicant"] = _ref("MaskedApplicant")
    components["MaskedApplicant"] = applicant
    components["MaskedApplication"] = application


def _problem_type(components: dict[str, Any]) -> None:
    """ProblemType: every problem type an answer may carry, with its status and title."""
    listed = [{"const": TYPE_BASE + kind, "title": cls.title,
               "description": f"{cls.status}: {(cls.__doc__ or cls.title).strip()}"}
              for kind, cls in sorted(_problem_classes().items())]
    listed += [{"const": TYPE_BASE + kind, "title": title, "description": f"{status}: {title}"}
               for kind, (status, title) in OTHER_PROBLEMS.items()]
    components["ProblemType"] = {"title": "ProblemType", "oneOf": listed}
    for name in ("Problem", "ReviewConflict"):
        components[name]["properties"]["type"] = _ref("ProblemType")


def build() -> dict[str, Any]:
    gen = _Schemas()
    planned: list[tuple[Operation, list[int], list[int] | None, list[list[int]]]] = []
    for op in OPERATIONS:
        params = [gen.add(p.type) for p in op.parameters]
        body = [gen.add(op.body)] if op.body is not None else None
        answers = [[gen.add(t) for t in _alternatives(a.type)] if a.type is not None else []
                   for a in op.answers]
        for _, kind in op.problem_bodies:
            gen.add(kind)
        planned.append((op, params, body, answers))
    for kind in (Problem, Enrichment, TraceEntry, *DOCUMENT_PARTS):
        gen.add(kind)
    header_schemas = {
        (id(p)): gen.add(p.type) for op in OPERATIONS for a in op.answers for p in a.headers
    }
    schemas, components = gen.generate()
    _masked(components)
    _problem_type(components)
    for schema in components.values():
        _close(schema)

    paths: dict[str, dict[str, Any]] = {}
    for op, params, body, answers in planned:
        operation: dict[str, Any] = {"summary": op.summary,
                                     "operationId": _operation_id(op)}
        description = op.description
        if op.scope is not None:
            description = f"Scope: `{op.scope.value}`. {description}".strip()
            operation["security"] = [{"apiKey": [op.scope.value]}]
        else:
            operation["security"] = []
        if description:
            operation["description"] = description
        if op.parameters:
            operation["parameters"] = [_parameter(p, schemas[i])
                                       for p, i in zip(op.parameters, params, strict=True)]
        if body is not None:
            content: dict[str, Any] = {"schema": schemas[body[0]]}
            if op.path == "/v1/applications":
                content["example"] = EXAMPLE_APPLICATION
            operation["requestBody"] = {"required": op.body_required,
                                        "content": {JSON: content}}
        responses: dict[str, Any] = {}
        for answer, index in zip(op.answers, answers, strict=True):
            out = _answer(answer, schemas, index)
            if answer.headers:
                out["headers"] = {h.name: _header(h, schemas[header_schemas[id(h)]])
                                  for h in answer.headers}
            responses[str(answer.status)] = out
        responses.update(_problem_answers(op))
        operation["responses"] = dict(sorted(responses.items()))
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "loanflow", "version": __version__, "description": DESCRIPTION},
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key: lf_…"}},
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }


def _header(param: Param, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": param.description, "schema": schema}


def _operation_id(op: Operation) -> str:
    words = [w.strip("{}") for w in op.path.split("/") if w and w != "v1"]
    return op.method.lower() + "_" + "_".join(w.replace("-", "_").replace(".", "_")
                                              for w in words)
