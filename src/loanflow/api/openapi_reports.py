"""The OpenAPI operations of what the dashboard shows of applications beyond the search:
one application's timeline (`/v1/applications/{id}/timeline`) and the CSV export of a
search (`/v1/exports/applications.csv`)."""

from __future__ import annotations

from typing import Any

from loanflow.api import export, timeline

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_TEXT = {"type": "string"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": _PROBLEM}}}


_AUTH = {"401": _problem("No, unknown, revoked or expired API key"),
         "403": _problem("The key lacks the scope")}


def _schemas() -> dict[str, Any]:
    return {
        "TimelineEvent": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at", "kind", "summary", "detail"],
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "kind": {"enum": list(timeline.KINDS)},
                "summary": {"type": "string", "description": "One line for a person"},
                "detail": {"type": "object", "description": "The event's figures, by kind:"
                           " received (channel, partner_id, external_id), attempt_failed"
                           " (attempt, error_code, message), dead_lettered (error_code,"
                           " message, attempts), replayed (by, corrected, last_error),"
                           " discarded (by, reason, last_error), stored (status, route,"
                           " score, risk_tier, flags, reasons), rejected (status, reasons),"
                           " review_decided (decision, reason, reviewed_by); reasons are"
                           " [{code, message}]"},
            },
        },
        "Timeline": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "events", "trace"],
            "properties": {
                "id": _TEXT,
                "events": {"type": "array", "description": "Oldest first",
                           "items": {"$ref": "#/components/schemas/TimelineEvent"}},
                "trace": {"type": ["array", "null"], "items": {"type": "object"},
                          "description": "The decision trace, as the single view's"
                                         " enrichment.trace; null when not assessed"},
            },
        },
    }


def paths(*, filters: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, schemas to add to the components); `filters`: the search's parameters."""
    columns = ", ".join(export.COLUMNS)
    return {
        "/v1/applications/{id}/timeline": {"get": {
            "summary": "What happened to one application, oldest first, and its decision"
                       " trace",
            "description": "Received, each failed attempt the records keep, dead-lettered,"
                           " replayed or discarded, stored or rejected, the review's"
                           " decision. An application still queued shows `received` only;"
                           " a dead letter without its application row still has its"
                           " timeline.",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _TEXT}],
            "responses": {
                "200": {"description": "The timeline", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Timeline"}}}},
                **_AUTH,
                "404": _problem("No such application"),
                "503": _problem("The store cannot be reached; retry"),
            },
        }},
        "/v1/exports/applications.csv": {"get": {
            "summary": "The applications of a search as CSV, newest first, streamed",
            "description": "The search's filters (no limit or cursor), at most"
                           f" {export.MAX_ROWS:,} rows, of the applications received"
                           " before the export began. Columns: " + columns + ". PII"
                           " masked as in the single view; a cell starting with = + - @,"
                           " tab or carriage return is prefixed with `'`.",
            "parameters": filters,
            "responses": {
                "200": {
                    "description": "The CSV file (RFC 4180, header row first)",
                    "headers": {
                        "Content-Disposition": {"schema": _TEXT, "description":
                                                'attachment; filename="applications-'
                                                '<UTC timestamp>.csv"'},
                        "X-Total-Rows": {"schema": {"type": "integer", "minimum": 0,
                                                    "maximum": export.MAX_ROWS},
                                         "description": "Rows the file holds: the matches"
                                                        " when it began, at most"
                                                        f" {export.MAX_ROWS:,}"},
                        "X-Truncated": {"schema": {"enum": ["true"]},
                                        "description": f"Sent when over {export.MAX_ROWS:,}"
                                                       " match: the file stops there"},
                    },
                    "content": {"text/csv": {"schema": _TEXT}},
                },
                **_AUTH,
                "422": _problem("A parameter unknown, repeated or out of range"),
                "503": _problem("The store cannot be reached; retry"),
            },
        }},
    }, _schemas()
