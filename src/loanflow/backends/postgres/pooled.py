"""What the parts of PostgresStore (review, review queue, export, logins) share: its pool."""

from __future__ import annotations

import contextlib
from typing import Any


class Pooled:
    """A part mixed into PostgresStore, which provides these two from its one pool.

    `for_request=True`: the query is built from an operator's request, so a data error
    in it is the request's fault (422), not the store's.
    """

    def _connection(
        self, what: str, *, for_request: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _transaction(
        self, what: str, *, for_request: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError
