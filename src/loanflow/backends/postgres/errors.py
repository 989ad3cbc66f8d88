"""Which PostgreSQL errors of a batch write are the batch's own fault.

A data or constraint error (SQLSTATE class 22 data exception, 23 integrity
constraint violation, 54 program limit exceeded such as an index row too large;
asyncpg's own argument checks raise class 22 too) fails the same write every time:
retrying the batch as an outage would hold it, and its neighbours, for ever.
Everything else (connection lost, timeouts and cancels, shutdown, too many
connections, disk full, serialization failures, a read-only standby after a
failover) may pass on its own: an outage, and the batch waits in the broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from loanflow.errors import StoreUnavailable
from loanflow.store.base import StoreRefused

#: SQLSTATE classes whose errors the data of a statement causes.
DATA_CLASSES = frozenset({"22", "23", "54"})
#: SQLSTATEs after which a connection cannot write again: read_only_sql_transaction
#: (the server is a standby now, or was made read-only), the server shutting down,
#: crashed or not accepting connections (57P01-57P03), and connection exceptions.
USELESS_CONNECTION = ("25006", "57P01", "57P02", "57P03", "08")


def caused_by_data(exc: BaseException | None) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "")[:2] in DATA_CLASSES


#: Why a batch whose COMMIT the server confirmed without its synchronous standby is
#: not saved: the result may live on one host only, and a failover would lose it.
UNCONFIRMED_COMMIT = ("the COMMIT was not confirmed by the synchronous standby (the wait"
                      " was cancelled): the batch stays in the broker and is saved again")
#: The detail of PostgreSQL's warning when a COMMIT stops waiting for the synchronous
#: standby (a cancel request; statement_timeout is off by then): committed locally only.
_LOCAL_ONLY = "might not have been replicated to the standby"


def unconfirmed_commit(message: object) -> bool:
    """Whether a notice says a COMMIT did not wait for the synchronous standby. Matched on
    the English text: servers with another `lc_messages` are not recognised."""
    return _LOCAL_ONLY in (getattr(message, "detail", None) or "")


def leaves_connection_useless(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "").startswith(
        USELESS_CONNECTION)


@contextlib.contextmanager
def refused_for_data() -> Iterator[None]:
    """Turns a StoreUnavailable whose cause is a data or constraint error into
    StoreRefused (same message: class and SQLSTATE, no row values)."""
    try:
        yield
    except StoreUnavailable as exc:
        if caused_by_data(exc.__cause__):
            raise StoreRefused(str(exc)) from exc.__cause__
        raise
