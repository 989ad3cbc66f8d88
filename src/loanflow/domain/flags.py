"""Review flags: stable codes that keep an application off the fast track.

A flag never refuses an application (that is what rules do); it sends it to an
underwriter with the reason. Codes are stored with every result: only ever add.
"""

from __future__ import annotations

from typing import Final

import msgspec

from loanflow.domain.trace import TraceEntry

#: The address's city is not one USPS accepts for its ZIP.
FLAG_CITY_NOT_IN_ZIP: Final = "address.city_not_in_zip"
#: Another application with the same SSN arrived in the last 24 h.
FLAG_DUPLICATE_SSN: Final = "applicant.ssn.seen_in_last_24h"
#: More applications than the velocity limit with this email in the velocity window.
FLAG_EMAIL_VELOCITY: Final = "applicant.email.above_velocity_limit"
#: The same for the phone number (compared in E.164 form).
FLAG_PHONE_VELOCITY: Final = "applicant.phone.above_velocity_limit"
#: The same for the client IP address the application was submitted from.
FLAG_IP_VELOCITY: Final = "client_ip.above_velocity_limit"

_MESSAGES: Final = {
    FLAG_CITY_NOT_IN_ZIP: "the city is not one USPS uses for this ZIP",
    FLAG_DUPLICATE_SSN: "another application with this SSN arrived in the last 24 h",
    FLAG_EMAIL_VELOCITY: "this email was used by more applications than the velocity limit"
    " allows in the window",
    FLAG_PHONE_VELOCITY: "this phone number was used by more applications than the velocity"
    " limit allows in the window",
    FLAG_IP_VELOCITY: "more applications came from this IP address than the velocity limit"
    " allows in the window",
}


def flag_message(flag: str) -> str:
    """What an underwriter reads for the flag; a flag without a message is named as is."""
    return f"flagged for review: {_MESSAGES.get(flag, flag)}"


class Findings(msgspec.Struct, frozen=True, kw_only=True):
    """Flags found for one application outside it (store, velocity) and their evidence."""

    flags: tuple[str, ...] = ()
    #: Trace entries of the figures behind the flags (e.g. velocity counts and limits).
    evidence: tuple[TraceEntry, ...] = ()

    def __add__(self, other: Findings) -> Findings:
        return Findings(flags=self.flags + other.flags, evidence=self.evidence + other.evidence)


NO_FINDINGS: Final = Findings()
