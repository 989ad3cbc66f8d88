"""Why a process cannot start, in one line: what is missing and how to set it.

`serve`, `api` and `worker` open everything before they serve (the runtime);
the errors of that opening are translated here into StartupError, which the
CLI prints as one line, without a traceback, and exits with its status: 2
when a setting is wrong (restarting will not help), 1 when a backend is
unreachable (it may come back: a supervisor may restart the process).
"""

from __future__ import annotations

from loanflow.errors import BrokerUnavailable, StartupError, StoreUnavailable, Unavailable
from loanflow.pii import PiiKeyError

#: How to make a PII key, as the README's production example does.
PII_KEY_HINT = (
    "set it to 32 random bytes in base64, e.g. LOANFLOW_PII_KEY=$(python3 -c 'import"
    " base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())'), and keep it"
    " in your secret store"
)


def cannot_start(exc: Unavailable | ValueError) -> StartupError:
    """The StartupError for an error raised while opening the runtime."""
    if isinstance(exc, BrokerUnavailable):
        return StartupError(f"cannot reach the broker ({exc}): start Redis there, or set"
                            " LOANFLOW_BROKER_URL to one that runs", exit_status=1)
    if isinstance(exc, StoreUnavailable):
        return StartupError(f"cannot reach the store ({exc}): start PostgreSQL there, or set"
                            " LOANFLOW_STORE_URL to one that runs", exit_status=1)
    if isinstance(exc, Unavailable):
        return StartupError(f"cannot start: {exc}", exit_status=1)
    if isinstance(exc, PiiKeyError) and "required" in str(exc):
        return StartupError(f"{exc}: {PII_KEY_HINT}")
    return StartupError(str(exc))  # settings errors name their LOANFLOW_* variable
