"""GET /v1/metrics/series?range=…, the app in-process over each mode's backends: a point
per second for 5m and 1h, a point per minute for 24h and 7d, bad values refused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loanflow.backends import SERIES_FILE
from loanflow.backends.redis.series import RedisSeries
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.series_base import MINUTE_S, SECOND_HISTORY_S, MetricsSeries, TaggedDelta
from loanflow.metrics.tally import Tally
from loanflow.settings import Settings
from tests.api.inprocess import MODES, InProcessApp, running_app
from tests.conftest import auth, production_deployment

#: How far behind the newest minute `final_through` can be: the roll-up's reach.
REACH_S = SECOND_HISTORY_S + MINUTE_S
#: When the module's app started; `PAST_MINUTE` is a minute two hours before it.
NOW_S = int(time.time())
PAST_MINUTE = (NOW_S // MINUTE_S - 120) * MINUTE_S


async def _write_before_the_start(series: MetricsSeries) -> None:
    """What an earlier process recorded and rolled up: 120 received in PAST_MINUTE."""
    await series.open()
    try:
        await series.write([TaggedDelta("earlier", 1, PAST_MINUTE + 12,
                                        Tally(counters={names.RECEIVED: 120}))])
        await series.roll_up([PAST_MINUTE])
    finally:
        await series.close()


@contextlib.contextmanager
def app_after_a_restart(mode: str, data_dir: Path) -> Iterator[InProcessApp]:
    """The app in `mode`, started on metrics an earlier process left behind."""
    if mode == "embedded":
        asyncio.run(_write_before_the_start(SQLiteSeries(data_dir / SERIES_FILE)))
        with running_app(Settings(data_dir=data_dir)) as app:
            yield app
        return
    with production_deployment(data_dir) as deployment:
        asyncio.run(_write_before_the_start(RedisSeries.from_url(deployment.broker_url)))
        with running_app(Settings(
            data_dir=data_dir, broker_url=deployment.broker_url, store_url=deployment.store_url,
            pii_key=deployment.pii_key,
        )) as app:
            yield app


@pytest.fixture(scope="module", params=MODES)
def app(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with app_after_a_restart(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def key(app: InProcessApp) -> str:
    return app.key("read")


@pytest.fixture(scope="module")
def past(app: InProcessApp) -> tuple[int, int]:
    """(second, minute): 30 received 10 s ago in this app, 120 in PAST_MINUTE before it."""
    second = int(time.time()) - 10
    app.call(app.runtime.metrics.series.write,
             [TaggedDelta("test", 1, second, Tally(counters={names.RECEIVED: 30}))])
    return second, PAST_MINUTE


def series(app: InProcessApp, key: str, **params: str) -> httpx.Response:
    return app.request("GET", "/v1/metrics/series", params=params, headers=auth(key))


def nonzero(body: dict[str, list[float]]) -> dict[int, float]:
    return {t: r for t, r in zip(body["t"], body["received_per_s"], strict=True) if r}


@pytest.mark.parametrize(("name", "points"), [("5m", 300), ("1h", 3600)])
def test_a_range_up_to_an_hour_has_a_point_per_second(app, key, past, name, points):
    second, _ = past

    body = series(app, key, range=name).json()

    assert body["step_s"] == 1 and len(body["t"]) == points
    assert body["t"] == list(range(body["t"][0], body["t"][0] + points))
    assert nonzero(body) == {second: 30}


@pytest.mark.parametrize(("name", "points"), [("24h", 1440), ("7d", 10080)])
def test_a_range_of_a_day_or_a_week_has_a_point_per_minute(app, key, past, name, points):
    _, minute = past

    body = series(app, key, range=name).json()

    assert body["step_s"] == 60 and len(body["t"]) == points
    assert all(t % 60 == 0 for t in body["t"])
    assert body["t"] == list(range(body["t"][0], body["t"][0] + 60 * points, 60))
    # A minute's rate is per second: 120 received in it is 2 a second.
    assert nonzero(body)[minute] == 2
    assert set(body) >= {"e2e_p99_ms", "p99_ms", "queue_depth", "queue_lag_s", "error_rate"}


def test_seconds_still_answers_a_point_per_second(app, key, past):
    body = series(app, key, seconds="3600").json()

    assert body["step_s"] == 1 and len(body["t"]) == 3600


@pytest.mark.parametrize("value", ["2h", "1d", "", "5M", "7d ", "3600"])
def test_a_range_not_offered_is_refused_with_422(app, key, value):
    answer = series(app, key, range=value)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"] == [
        {"field": "range", "message": "expected one of 5m, 1h, 24h, 7d"}]


def test_range_and_seconds_together_are_refused_with_422(app, key):
    answer = series(app, key, range="1h", seconds="60")

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "range"


def test_an_unknown_or_repeated_parameter_is_refused_with_422(app, key):
    typo = series(app, key, rnage="7d")
    twice = app.request("GET", "/v1/metrics/series?range=1h&range=7d", headers=auth(key))

    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "rnage"
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "range"


def test_a_range_needs_the_read_scope(app):
    assert app.request("GET", "/v1/metrics/series", params={"range": "7d"}).status_code == 401


def test_after_answers_only_the_minutes_after_it(app, key, past):
    _, minute = past

    from_busy = series(app, key, range="24h", after=str(minute - 1)).json()
    past_busy = series(app, key, range="24h", after=str(minute)).json()

    assert from_busy["step_s"] == 60 and from_busy["t"][0] == minute
    assert nonzero(from_busy)[minute] == 2
    assert past_busy["t"][0] == minute + 60 and minute not in nonzero(past_busy)
    for body in (from_busy, past_busy):  # every minute after it, up to the newest
        assert body["t"] == list(range(body["t"][0], body["t"][-1] + 60, 60))
        assert all(len(column) == len(body["t"]) for column in body.values()
                   if isinstance(column, list))


def test_final_through_passed_back_as_after_gets_what_may_have_changed(app, key):
    whole = series(app, key, range="7d").json()
    newest, final = whole["t"][-1], whole["final_through"]

    part = series(app, key, range="7d", after=str(final)).json()

    # Minutes are rolled up 10 s after they end (just started, the app may still be rolling
    # up the last hour's); one the roll-up can no longer reach, an hour on, is final.
    assert newest - REACH_S <= final <= newest
    # What is after it, without a gap: the minutes not final then, and any that ended
    # between the two requests.
    assert part["t"] == list(range(final + 60, final + 60 * (len(part["t"]) + 1), 60))
    assert max(part["t"], default=final) >= newest and part["final_through"] >= final


def test_a_per_second_series_has_no_final_through(app, key):
    assert series(app, key, range="1h").json()["final_through"] is None


@pytest.mark.parametrize("per_second", [{}, {"seconds": "60"}, {"range": "5m"}, {"range": "1h"}])
def test_after_with_per_second_points_is_refused_with_422(app, key, per_second):
    answer = series(app, key, after="1800000000", **per_second)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"] == [
        {"field": "after", "message": "expected only with range 24h or 7d"}]


@pytest.mark.parametrize("value", ["-60", "abc", "1.5", "1e9", "²", " 60", "9214646401"])
def test_an_after_not_a_time_in_unix_seconds_is_refused_with_422(app, key, value):
    answer = series(app, key, range="7d", after=value)

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "after", "message": "expected a whole number from 0 to 9214646400"}]


def test_after_given_twice_is_refused_with_422(app, key):
    answer = app.request("GET", "/v1/metrics/series?range=7d&after=0&after=60",
                         headers=auth(key))

    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "after"
