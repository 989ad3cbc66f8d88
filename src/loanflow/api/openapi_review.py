"""The OpenAPI operations of manual review (`/v1/dead-letters…`, `/v1/audit`), the business
review queue (`/v1/reviews`, `/v1/applications/{id}/review`) and metrics.

Documented so clients and schemathesis see every route an API key may call; bodies
are described from the same msgspec types the routes decode with.
"""

from __future__ import annotations

from typing import Any

import msgspec

from loanflow.api.dead_letters import MAX_PAGE, MAX_SEQ, BulkBody, DiscardBody, ReplayBody
from loanflow.api.metrics import MAX_SERIES_S, MAX_WINDOW_S, SERIES_RANGES
from loanflow.api.reviews import DECISIONS, ReviewBody
from loanflow.api.search import DEFAULT_PAGE
from loanflow.api.search import MAX_PAGE as MAX_SEARCH_PAGE
from loanflow.store.search import Review

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_OBJECT = {"type": "object"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": _PROBLEM}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


_ID = {"name": "id", "in": "path", "required": True, "schema": _TEXT}
_AUTH = {"401": _problem("No, unknown, revoked or expired API key"),
         "403": _problem("The key lacks the scope")}
_READ = {**_AUTH, "422": _problem("A parameter is out of its range or form"),
         "503": _problem("The store cannot be reached; retry")}
_BODY = {**_READ, "400": _problem("Malformed JSON"),
         "408": _problem("Body sent too slowly"), "413": _problem("Body over 128 KiB")}


def _review_schemas() -> dict[str, Any]:
    """The business review's `Review` object (on an application, a decision's answer and
    its 409) and an item of the queue: a search item with the route's reasons."""
    nullable_text = {"type": ["string", "null"]}
    return {
        "Review": {
            "type": "object",
            "required": ["status", "decision", "reason", "reviewed_by", "reviewed_at"],
            "properties": {
                "status": {"enum": [r.value for r in Review]},
                "decision": {"enum": [*DECISIONS, None]},
                "reason": nullable_text,
                "reviewed_by": nullable_text,
                "reviewed_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "ReviewItem": {"allOf": [
            {"$ref": "#/components/schemas/ApplicationSummary"},
            {"type": "object", "required": ["route_reasons"], "properties": {
                "route_reasons": {"type": "array", "items": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": _TEXT, "message": _TEXT}}}}},
        ]},
        "ReviewConflict": {"allOf": [
            _PROBLEM,
            {"type": "object", "properties": {
                "review": {"$ref": "#/components/schemas/Review"}}},
        ]},
    }


def _review_paths(body: dict[str, Any]) -> dict[str, Any]:
    decided = {"type": "object", "required": ["id", "review"], "properties": {
        "id": _TEXT, "review": {"$ref": "#/components/schemas/Review"}}}
    return {
        "/v1/reviews": {"get": {
            "summary": "The business review queue: applications routed to manual_review"
                       " with no decision yet, oldest first",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_PAGE,
                                 "default": DEFAULT_PAGE}, "Page size"),
                _query("cursor", _TEXT, "The next_cursor of the previous page"),
            ],
            "responses": {"200": _json("A page of open reviews", {
                "type": "object", "required": ["items", "next_cursor"],
                "properties": {"items": {"type": "array", "items": {
                    "$ref": "#/components/schemas/ReviewItem"}},
                    "next_cursor": {"type": ["string", "null"]}}}), **_READ},
        }},
        "/v1/applications/{id}/review": {"post": {
            "summary": "Decide an application of the review queue: final and audited",
            "description": "The same decision and reason from the same caller again answer"
                           " the recorded decision, with `Idempotent-Replayed: true`.",
            "parameters": [_ID],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": body}}},
            "responses": {
                "200": _json("The decision recorded (or recorded before, by the same"
                             " caller with the same body)", decided),
                "404": _problem("No such application"),
                "409": {"description": "Not in the review queue (not routed to"
                                       " manual_review, or not processed yet), or decided"
                                       " before: the problem's `review` holds that decision",
                        "content": {"application/problem+json": {"schema": {
                            "$ref": "#/components/schemas/ReviewConflict"}}}},
                **_BODY, "413": _problem("Body over 16 KiB"),
            },
        }},
    }


def paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, schemas to add to the components)."""
    (replay, discard, bulk, review), schemas = msgspec.json.schema_components(
        [ReplayBody, DiscardBody, BulkBody, ReviewBody],
        ref_template="#/components/schemas/{name}",
    )
    schemas.update(_review_schemas())
    letter = {"type": "object", "required": ["id", "status", "error_code"],
              "properties": {"id": _TEXT, "status": _TEXT, "error_code": _TEXT}}
    page = {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": letter},
                           "next_cursor": {"type": ["string", "null"]}}}
    acted = {"type": "object", "required": ["id", "status"],
             "properties": {"id": _TEXT, "status": _TEXT}}
    counted = {"type": "object", "required": ["action", "dry_run", "count"],
               "properties": {"action": _TEXT, "dry_run": {"type": "boolean"},
                              "count": {"type": "integer"}}}
    bulk_op = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": bulk}}}, "responses": {"200": _json("How many match, or were acted on",
                                                       counted), **_BODY}}
    return {
        **_review_paths(review),
        "/v1/dead-letters": {"get": {
            "summary": "Search dead letters, newest first",
            "parameters": [
                _query("status", _TEXT, "open (default), replayed, discarded or any"),
                *(_query(name, _TEXT) for name in
                  ("error_code", "channel", "partner_id", "external_id", "id", "q", "cursor")),
                _query("since", _TIME), _query("until", _TIME),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            ],
            "responses": {"200": _json("A page of dead letters", page), **_READ},
        }},
        "/v1/dead-letters/replay": {"post": {"summary": "Replay every open match of a filter",
                                             **bulk_op}},
        "/v1/dead-letters/discard": {"post": {"summary": "Discard every open match of a filter",
                                              **bulk_op}},
        "/v1/dead-letters/{id}": {"get": {
            "summary": "One dead letter: attempts and the masked application",
            "parameters": [_ID],
            "responses": {"200": _json("The dead letter", letter),
                          "404": _problem("No such dead letter"), **_READ},
        }},
        "/v1/dead-letters/{id}/replay": {"post": {
            "summary": "Queue it again under its own id, as it was or corrected",
            "parameters": [_ID],
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": replay}}},
            "responses": {"202": _json("Queued again", acted),
                          "404": _problem("No such dead letter"),
                          "409": _problem("Already resolved"), **_BODY},
        }},
        "/v1/dead-letters/{id}/discard": {"post": {
            "summary": "Close it without processing, with a reason",
            "parameters": [_ID],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": discard}}},
            "responses": {"200": _json("Discarded", acted),
                          "404": _problem("No such dead letter"),
                          "409": _problem("Already resolved"), **_BODY},
        }},
        "/v1/audit": {"get": {
            "summary": "The operators' audit trail, newest first",
            "parameters": [_query("before", {"type": "integer", "minimum": 0,
                                             "maximum": MAX_SEQ}, "seq of a previous page")],
            "responses": {"200": _json("Audit entries", {
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": _OBJECT}}}), **_READ},
        }},
        "/v1/metrics/summary": {"get": {
            "summary": "Rates, error rate, latency percentiles, queue depth, counts",
            "parameters": [_query("window_s", {"type": "integer", "minimum": 1,
                                               "maximum": MAX_WINDOW_S})],
            "responses": {"200": _json("The summary", _OBJECT), **_READ},
        }},
        "/v1/metrics/series": {"get": {
            "summary": "The dashboard's charts: a point per second (up to 1 h) or minute",
            "description": "`range` 5m and 1h answer a point per second, 24h and 7d one "
                           "per minute (`step_s` says which; a minute's rates are per "
                           "second, its percentiles those of its merged histograms). "
                           "`seconds` (per second, default 900) or `range`, not both.",
            "parameters": [
                _query("seconds", {"type": "integer", "minimum": 1, "maximum": MAX_SERIES_S}),
                _query("range", {"enum": list(SERIES_RANGES)}),
            ],
            "responses": {"200": _json("The series", _OBJECT), **_READ},
        }},
        "/v1/alerts": {"get": {
            "summary": "The conditions of the shipped alerting rules that hold now",
            "responses": {"200": _json("Firing alerts, critical first", {
                "type": "object", "required": ["alerts"],
                "properties": {"alerts": {"type": "array", "items": {
                    "type": "object", "required": ["name", "severity", "summary"],
                    "properties": {
                        "name": {"type": "string"},
                        "severity": {"enum": ["warning", "critical"]},
                        "summary": {"type": "string"},
                    }}}}}), **_READ},
        }},
        "/metrics": {"get": {
            "summary": "Prometheus text exposition", "security": [],
            "responses": {"200": {"description": "Metrics", "content": {
                "text/plain": {"schema": _TEXT}}},
                "503": _problem("The store cannot be reached")},
        }},
    }, schemas
