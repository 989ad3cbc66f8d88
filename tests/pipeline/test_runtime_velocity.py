"""The runtime wires velocity into its processors, in both deployment modes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from loanflow.broker.base import Submission
from loanflow.domain.flags import FLAG_EMAIL_VELOCITY
from loanflow.models import Application, Envelope, new_application_id
from loanflow.pii import new_key_text
from loanflow.process.runtime import open_runtime
from loanflow.settings import Settings
from tests.conftest import Deployment, production_deployment, sample_application


@pytest.fixture(params=["embedded", "production"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    if request.param == "embedded":
        yield Deployment(tmp_path)
        return
    with production_deployment(tmp_path) as production:
        yield production


def test_the_fourth_application_with_one_email_is_flagged(deployment: Deployment) -> None:
    settings = Settings(
        data_dir=deployment.data_dir,
        broker_url=deployment.broker_url,
        store_url=deployment.store_url,
        pii_key="" if not deployment.store_url else new_key_text(),
        velocity_limit=3,
    )

    async def scenario() -> list[list[str]]:
        async with open_runtime(settings) as runtime:
            start_ns = time.time_ns()
            envelopes = []
            for i in range(4):
                data = sample_application(applicant__ssn=f"123-45-{6780 + i}",
                                          applicant__phone=f"+1 415 555 01{10 + i}")
                application = msgspec.convert(data, Application)
                now_ns = start_ns + i * 1_000_000
                envelopes.append(Envelope(
                    id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="key-a",
                    idempotency_key=str(uuid.uuid4()), channel="web",
                    sealed_application=runtime.cipher.seal(msgspec.msgpack.encode(application)),
                ))
            await runtime.broker.append(
                [Submission(e, e.idempotency_key) for e in envelopes]
            )
            await runtime.processor(0).drain()
            flags = []
            for envelope in envelopes:
                record = await runtime.store.get_application(envelope.id)
                assert record is not None
                document = msgspec.json.decode(record.document)
                flags.append(document["assessment"]["enrichment"]["flags"])
            return flags

    flags = asyncio.run(scenario())

    assert [FLAG_EMAIL_VELOCITY in f for f in flags] == [False, False, False, True]
