"""The OpenAPI 3.1 document, built from the same msgspec types the API decodes with."""

from __future__ import annotations

from typing import Any

import msgspec

from loanflow import __version__
from loanflow.api import openapi_reports, openapi_review, search
from loanflow.models import Application

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    content = {"application/problem+json": {"schema": _PROBLEM}}
    return {"description": description, "content": content}


def _summary_schema() -> dict[str, Any]:
    """An item of the search (api/search.py `item`), also the base of a review queue item."""
    moment = {"type": "string", "format": "date-time"}
    nullable_text = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["id", "status", "route", "channel", "partner_id", "external_id",
                     "received_at", "processed_at", "score", "risk_tier", "flags", "review",
                     "review_decision", "reviewed_at"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": list(search.STORED_STATUSES)},
            "route": {"enum": [*search.ROUTES, None]},
            "channel": {"type": "string"},
            "partner_id": nullable_text,
            "external_id": nullable_text,
            "received_at": moment,
            "processed_at": moment,
            "score": {"type": ["integer", "null"]},
            "risk_tier": nullable_text,
            "flags": {"type": "array", "items": {"type": "string"}},
            "review": {"enum": [*search.REVIEWS, None]},
            "review_decision": nullable_text,
            "reviewed_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _search_filters() -> list[dict[str, Any]]:
    """The search's filters, which the CSV export of a search takes too."""
    text = {"type": "string", "minLength": 1, "maxLength": search.MAX_ID_TEXT}
    moment = {"type": "string", "format": "date-time"}
    return [
        _query("status", {"type": "string", "enum": list(search.STORED_STATUSES)},
               "Queued and processing applications are found by id only"),
        _query("route", {"type": "string", "enum": list(search.ROUTES)},
               "The recommended route"),
        _query("channel", {"type": "string", "enum": list(search.CHANNELS)}, "Channel"),
        _query("partner_id", text, "Partner"),
        _query("external_id", text, "The submitter's own reference"),
        _query("review", {"type": "string", "enum": list(search.REVIEWS)},
               "open: routed to manual_review, no decision yet; decided: decided"),
        _query("since", moment, "Received at or after"),
        _query("until", moment, "Received before"),
    ]


def _search_operation(auth_errors: dict[str, Any]) -> dict[str, Any]:
    item = {"$ref": "#/components/schemas/ApplicationSummary"}
    return {
        "summary": "Search stored applications, newest first, a page at a time",
        "parameters": [
            *_search_filters(),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": search.MAX_PAGE,
                             "default": search.DEFAULT_PAGE}, "Page size"),
            _query("cursor", {"type": "string"}, "The next_cursor of the previous page"),
        ],
        "responses": {
            "200": {"description": "A page, and the cursor of the next (null at the end)",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["items", "next_cursor"],
                        "properties": {"items": {"type": "array", "items": item},
                                       "next_cursor": {"type": ["string", "null"]}},
                    }}}},
            **auth_errors,
            "422": _problem_response("A parameter unknown, repeated or out of range"),
            "503": _problem_response("The store cannot be reached; retry"),
        },
    }


def build() -> dict[str, Any]:
    (app_schema,), components = msgspec.json.schema_components(
        [Application], ref_template="#/components/schemas/{name}"
    )
    components["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    components["Accepted"] = {
        "type": "object",
        "required": ["id", "status", "received_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued"]},
            "received_at": {"type": "string", "format": "date-time"},
        },
    }
    components["ApplicationView"] = {
        "type": "object",
        "required": ["id", "status", "received_at"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": [
                "queued", "processing", "stored", "rejected", "dead_lettered", "replayed",
                "discarded"]},
            "received_at": {"type": "string", "format": "date-time"},
            "processed_at": {"type": "string", "format": "date-time"},
            "latency_ms": {"type": "number"},
            "application": {"type": ["object", "null"]},
            "enrichment": {"type": ["object", "null"]},
            "rejection_reasons": {"type": "array"},
            "review": {"oneOf": [{"type": "null"},
                                 {"$ref": "#/components/schemas/Review"}]},
        },
    }
    components["ApplicationSummary"] = _summary_schema()
    review_paths, review_schemas = openapi_review.paths()
    components.update(review_schemas)
    report_paths, report_schemas = openapi_reports.paths(filters=_search_filters())
    components.update(report_schemas)
    auth_errors = {
        "401": _problem_response("No, unknown, revoked or expired API key"),
        "403": _problem_response("The key lacks the scope"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "loanflow", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/applications": {
                "post": {
                    "summary": "Submit one application",
                    "parameters": [{
                        "name": "Idempotency-Key", "in": "header", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": app_schema}}},
                    "responses": {
                        "202": {
                            "description": "Durably queued",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Accepted"}}},
                        },
                        "400": _problem_response("Malformed JSON or Idempotency-Key"),
                        **auth_errors,
                        "409": _problem_response("Same key still being accepted; retry"),
                        "413": _problem_response("Body over 64 KiB"),
                        "415": _problem_response("Not application/json"),
                        "422": _problem_response("Schema errors, or key reused with another body"),
                        "429": _problem_response("Over the key's rate"),
                        "503": _problem_response("Cannot accept durably now; retry"),
                    },
                },
                "get": _search_operation(auth_errors),
            },
            "/v1/applications/batch": {
                "post": {
                    "summary": "Submit up to 1,000 applications (JSON array or NDJSON)",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "array", "maxItems": 1000, "items": {
                            "type": "object",
                            "required": ["idempotency_key", "application"],
                            "properties": {
                                "idempotency_key": {"type": "string", "minLength": 1,
                                                    "maxLength": 255},
                                "application": app_schema,
                            },
                        }}}}},
                    "responses": {
                        "200": {"description": "Each item's result, in order",
                                "content": {"application/json": {"schema": {
                                    "type": "object",
                                    "required": ["accepted", "refused", "items"],
                                    "properties": {
                                        "accepted": {"type": "integer"},
                                        "refused": {"type": "integer"},
                                        "items": {"type": "array"},
                                    }}}}},
                        "400": _problem_response("Not an array of items"),
                        **auth_errors,
                        "413": _problem_response("Over 16 MiB or 1,000 items"),
                        "415": _problem_response("Neither JSON nor NDJSON"),
                        "429": _problem_response("Over the key's rate"),
                        "503": _problem_response("Cannot accept durably now; retry"),
                    },
                }
            },
            "/v1/applications/{id}": {
                "get": {
                    "summary": "One application: status, timings, masked data, results",
                    "parameters": [{"name": "id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The application", "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ApplicationView"}}}},
                        **auth_errors,
                        "404": _problem_response("No such application"),
                    },
                }
            },
            **review_paths,
            **report_paths,
            "/healthz": {"get": {"summary": "Liveness", "security": [],
                                 "responses": {"200": {"description": "Alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "security": [],
                                "description": "Ready to accept: the broker is reachable and"
                                " keeps what it acknowledges. The body's `checks` say whether"
                                " the broker and the store answer, `durability` what a 202"
                                " rests on (`redis aof always`, `redis aof everysec (may lose"
                                " the last second)`, `sqlite synchronous=FULL`, or `UNSAFE: …`"
                                " when LOANFLOW_UNSAFE_REDIS=1 allowed a Redis that may lose"
                                " it).",
                                "responses": {"200": {"description": "Ready"},
                                              "503": {"description": "Not ready"}}}},
        },
    }
