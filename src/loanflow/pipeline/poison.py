"""Isolating an application that kills its processor (segfault, OOM kill, a hang past
the visibility timeout).

Such a crash records no attempt: the broker hands the whole batch out again after the
visibility timeout, each application one delivery more, and after enough of them every
one would be dead-lettered as a crash loop without ever being tried. So an application
handed out twice more than its recorded attempts explain is a suspect, and a batch that
holds one is cut down to that one: the rest go back to the broker uncounted (a release)
for other batches, and the suspect is tried alone. If it kills the processor again,
only its own count grows; once past the crash-loop limit it is dead-lettered alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from loanflow.broker.base import Broker, Delivery

log = logging.getLogger(__name__)

#: Unexplained redeliveries (handouts that ended with neither a result nor a recorded
#: failure) after which an application is tried alone: one may be a restart or deploy.
SUSPECT_AFTER = 2
#: The exit status of a worker killed by LOANFLOW_CRASH_MARKER (test only).
CRASH_EXIT_STATUS = 70


def unexplained_redeliveries(delivery: Delivery) -> int:
    """Earlier handouts with no recorded outcome: a failed attempt is recorded in the
    envelope and a release uncounts its delivery, so what is left ended in a crash (or
    a result stored but never acked, which a second try leaves as it is)."""
    return delivery.deliveries - 1 - len(delivery.envelope.attempts)


def split(deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
    """(to process now, to hand back): a batch holding a suspect is cut down to its
    oldest suspect."""
    for delivery in deliveries:
        if unexplained_redeliveries(delivery) >= SUSPECT_AFTER:
            return [delivery], [d for d in deliveries if d is not delivery]
    return list(deliveries), []


async def isolate_suspect(
    broker: Broker, deliveries: list[Delivery], *, consumer: str
) -> list[Delivery]:
    """The deliveries to process now; the others of a batch holding a suspect are
    released at once, uncounted, for the next batches."""
    now, later = split(deliveries)
    if later:
        [suspect] = now
        log.warning(
            "processor %s: application %s handed out %d times without an answer; trying it"
            " alone, %d handed back", consumer, suspect.envelope.id, suspect.deliveries,
            len(later),
        )
        await broker.release(later, 0.0)
    return now


def crash_if_marked(marker: str, external_id: str | None) -> None:
    """Test only (LOANFLOW_CRASH_MARKER): end this process at once, with no cleanup, as
    a segfault or an OOM kill would, when `external_id` starts with `marker`."""
    if marker and (external_id or "").startswith(marker):
        log.critical("external_id starts with the crash marker %r: exiting", marker)
        os._exit(CRASH_EXIT_STATUS)
