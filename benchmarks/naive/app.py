"""THE NAIVE BASELINE, for comparison only: not loanflow, never deploy it.

The service a team writes first: FastAPI + pydantic, and inside each request
one INSERT into PostgreSQL (asyncpg) and one XADD to Redis, then 202. No
group commit, no batching, no processing afterwards (so no end-to-end stage:
the row is stored when the 202 leaves). `loanflow bench` runs it with uvicorn
and 2 workers against the same throwaway Redis (AOF, appendfsync always) and
PostgreSQL (fsync on) as loanflow's production mode, with the same load
generator, and reports loanflow's sustained rate as a multiple of this one's.

Configured by NAIVE_DATABASE_URL, NAIVE_REDIS_URL and NAIVE_TOKEN (the one
accepted Bearer token).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import asyncpg
import redis.asyncio as redis
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    id uuid PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    received_at timestamptz NOT NULL,
    document jsonb NOT NULL
)"""
#: Serialises the CREATE TABLE of the uvicorn workers starting at once.
SCHEMA_LOCK = 424242
STREAM = "naive:applications"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(Strict):
    line1: Annotated[str, Field(min_length=1, max_length=200)]
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)]
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    zip: Annotated[str, Field(pattern=r"^[0-9]{5}(-[0-9]{4})?$")]


class Applicant(Strict):
    first_name: Annotated[str, Field(min_length=1, max_length=100)]
    last_name: Annotated[str, Field(min_length=1, max_length=100)]
    date_of_birth: dt.date
    ssn: Annotated[str, Field(pattern=r"^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$")]
    email: Annotated[str, Field(min_length=3, max_length=254)]
    phone: Annotated[str, Field(min_length=7, max_length=30)]
    address: Address
    employment_status: Literal["employed", "self_employed", "unemployed", "retired",
                               "student", "other"]
    employer_name: Annotated[str, Field(max_length=200)] | None = None
    annual_income: Annotated[float, Field(ge=0, le=1_000_000_000)]
    monthly_debt_payments: Annotated[float, Field(ge=0, le=1_000_000_000)] = 0.0
    monthly_housing_payment: Annotated[float, Field(ge=0, le=1_000_000_000)] = 0.0
    co_signer: bool = False


class Loan(Strict):
    amount: Annotated[float, Field(ge=0, le=1_000_000_000)]
    term_months: Annotated[int, Field(ge=1, le=600)]
    purpose: str


class Consent(Strict):
    credit_check: bool
    terms_version: Annotated[str, Field(min_length=1, max_length=40)]


class Application(Strict):
    applicant: Applicant
    loan: Loan
    channel: Literal["web", "mobile", "broker", "partner_api", "branch", "phone"]
    partner_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    consent: Consent
    submitted_at: dt.datetime | None = None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["NAIVE_DATABASE_URL"], min_size=2,
                                     max_size=20)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(SCHEMA)
    app.state.pool = pool
    app.state.redis = redis.from_url(os.environ["NAIVE_REDIS_URL"])
    app.state.token = os.environ["NAIVE_TOKEN"]
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await pool.close()


app = FastAPI(title="naive baseline (comparison only)", lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/applications", status_code=202)
async def submit(
    application: Application, request: Request,
    authorization: Annotated[str, Header()] = "",
    idempotency_key: Annotated[str, Header(min_length=1, max_length=255)] = "",
) -> JSONResponse:
    if authorization != f"Bearer {request.app.state.token}":
        raise HTTPException(401, "bad token")
    if not idempotency_key:
        raise HTTPException(400, "Idempotency-Key required")
    app_id, now = uuid.uuid4(), dt.datetime.now(dt.UTC)
    document = application.model_dump_json()
    row = await request.app.state.pool.fetchrow(
        "INSERT INTO applications (id, idempotency_key, received_at, document)"
        " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (idempotency_key) DO NOTHING"
        " RETURNING id", app_id, idempotency_key, now, document)
    if row is None:  # a retry: answer as before, without a second XADD
        return JSONResponse({"status": "queued", "replayed": True}, status_code=202)
    await request.app.state.redis.xadd(STREAM, {"id": str(app_id), "doc": document})
    body = {"id": str(app_id), "status": "queued", "received_at": now.isoformat()}
    return JSONResponse(body, status_code=202)
