"""The error tree. The API maps each to problem+json at the edge.

    LoanflowError
    ├── RequestError                 the client's request is wrong (4xx, final)
    │   ├── MalformedRequest         400: bad JSON, missing/invalid header
    │   ├── Unauthenticated          401
    │   ├── Forbidden                403: key lacks the scope
    │   ├── RequestTimeout           408: body sent too slowly
    │   ├── PayloadTooLarge          413
    │   ├── UnsupportedMediaType     415
    │   ├── SchemaInvalid            422: field-level errors
    │   ├── IdempotencyKeyReused     422: same key, other body
    │   ├── IdempotencyConflict      409: same key still being accepted
    │   ├── RateLimited              429: over the key's rate
    │   ├── NotOpen                  409: the dead letter was already resolved
    │   ├── NotInReviewQueue         409: the application awaits no business decision
    │   ├── AlreadyDecided           409: its review was decided before (the decision
    │   │                                 goes with the answer)
    │   ├── InvalidValue             422: a value the store cannot hold or compare
    │   ├── HeadersTooLarge          431: request head over its limit (answered by the
    │   │                                 HTTP protocol, never raised)
    │   └── NotFound                 404
    ├── Unavailable                  503: cannot promise durability now
    │   ├── BrokerUnavailable
    │   ├── StoreUnavailable
    │   └── QueueFull
    └── StartupError                 the process cannot start: one line, what and how to fix
        └── UnsafeRedis              Redis may lose what it acknowledges
"""

from __future__ import annotations

from dataclasses import dataclass


class LoanflowError(Exception):
    """Base of every error loanflow raises on purpose."""

    #: The HTTP status the API answers it with, and its problem type and title.
    status = 500
    type = "internal"
    title = "Internal error"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class RequestError(LoanflowError):
    status = 400
    type = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedRequest(RequestError):
    status = 400
    type = "malformed-request"
    title = "Malformed request"


class Unauthenticated(RequestError):
    status = 401
    type = "unauthenticated"
    title = "Missing or invalid API key"


class Forbidden(RequestError):
    status = 403
    type = "forbidden"
    title = "API key lacks the required scope"


class RequestTimeout(RequestError):
    status = 408
    type = "request-timeout"
    title = "Request body sent too slowly"


class PayloadTooLarge(RequestError):
    status = 413
    type = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(RequestError):
    status = 415
    type = "unsupported-media-type"
    title = "Unsupported media type"


class NotFound(RequestError):
    status = 404
    type = "not-found"
    title = "Not found"


class SchemaInvalid(RequestError):
    status = 422
    type = "validation-error"
    # One title per problem type (RFC 9457): a body's fields and a query's parameters alike.
    title = "One or more fields are invalid"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} field(s) invalid")
        self.errors = errors


class IdempotencyKeyReused(RequestError):
    status = 422
    type = "idempotency-key-reused"
    title = "Idempotency-Key already used with a different body"


class IdempotencyConflict(RequestError):
    status = 409
    type = "idempotency-conflict"
    title = "A request with this Idempotency-Key is still being accepted"
    retry_after_s = 1


class NotOpen(RequestError):
    status = 409
    type = "dead-letter-not-open"
    title = "The dead letter is no longer open"


class NotInReviewQueue(RequestError):
    status = 409
    type = "not-in-review-queue"
    title = "The application is not in the review queue"


class AlreadyDecided(RequestError):
    """A decision is final: the answer carries the one recorded (`review`, as the API
    shows it: api/applications.py ReviewView)."""

    status = 409
    type = "review-already-decided"
    title = "The application's review was already decided"

    def __init__(self, detail: str, *, review: object) -> None:
        super().__init__(detail)
        self.review = review


class InvalidValue(RequestError):
    """The store refused a value of the request (NUL in text, a number out of range):
    the same request can never succeed, so this is not an outage (503)."""

    status = 422
    type = "invalid-value"
    title = "A value in the request cannot be stored or compared"


class HeadersTooLarge(RequestError):
    status = 431
    type = "headers-too-large"
    title = "Request header fields too large"


class RateLimited(RequestError):
    status = 429
    type = "rate-limited"
    title = "Over this API key's rate limit"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(LoanflowError):
    """We cannot make the promise a 202 carries right now; retry later."""

    status = 503
    type = "unavailable"
    title = "Service unavailable"
    retry_after_s = 1


class BrokerUnavailable(Unavailable):
    type = "broker-unavailable"


class StoreUnavailable(Unavailable):
    type = "store-unavailable"


class QueueFull(Unavailable):
    type = "queue-full"
    title = "Queue is over its depth limit"


class StartupError(LoanflowError):
    """A start that cannot work: the CLI prints the message as one line and exits.

    `exit_status` 2: a setting is wrong (a restart alone will not help); 1: something
    it needs is unreachable now."""

    def __init__(self, message: str, *, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class UnsafeRedis(StartupError):
    """Redis may lose what it acknowledges, and LOANFLOW_UNSAFE_REDIS is not set."""
