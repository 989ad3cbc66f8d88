"""Who a command run from a terminal acts as, in the audit trail."""

from __future__ import annotations

import getpass
import os


def terminal_actor() -> str:
    """`cli:USER@HOST`: the account and host a command ran as (its API has no key)."""
    return f"cli:{getpass.getuser()}@{os.uname().nodename}"
