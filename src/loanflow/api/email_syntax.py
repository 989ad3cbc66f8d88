"""Email syntax as email-validator judges it, quick for the common address.

`validate_email` was the largest single cost of accepting a submission (about
a quarter of the API's CPU under cProfile), most of it spent checking the
domain's characters one by one against the IDNA tables. Domains repeat (a few
providers hold most addresses), so each domain's verdict is cached, and a
plain ASCII local part is checked with one regular expression. Any other
address goes to `validate_email` unchanged, so its verdict and message stand;
tests/api/test_email_syntax.py checks that the shortcut never accepts what
`validate_email` refuses.
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

#: A dot-atom local part of a subset of RFC 5322's atext, then the domain.
_PLAIN = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9.-]+)")
#: RFC 5321's limit on a whole address, as email-validator applies it.
MAX_LENGTH = 254
#: Distinct domains remembered; past that the least recent are checked again.
DOMAINS_CACHED = 4096


def email_error(address: str) -> str | None:
    """None for a valid address (deliverability not checked), else why it is not."""
    plain = _PLAIN.fullmatch(address)
    if plain is not None and len(address) <= MAX_LENGTH and _domain_error(plain[1]) is None:
        return None
    return _error(address)


@functools.lru_cache(maxsize=DOMAINS_CACHED)
def _domain_error(domain: str) -> str | None:
    # With the shortest plain local part, only the domain can be wrong.
    return _error("x@" + domain)


def _error(address: str) -> str | None:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None
