"""Every Redis user turns a Redis failure into its own Unavailable, never a 500."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from loanflow.backends.redis.errors import unavailable_as
from loanflow.errors import BrokerUnavailable
from loanflow.metrics.series_base import MetricsUnavailable
from loanflow.pipeline.velocity import VelocityUnavailable


@pytest.mark.parametrize("error", [BrokerUnavailable, MetricsUnavailable, VelocityUnavailable])
@pytest.mark.parametrize("failure", [
    RedisConnectionError("Connection refused"),
    ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
    OSError("Broken pipe"),
    # uvloop's error for a write on a connection Redis already closed (a restart).
    RuntimeError("unable to perform operation on <TCPTransport closed=True>;"
                 " the handler is closed"),
])
def test_a_redis_failure_becomes_the_callers_unavailable(error, failure):
    with pytest.raises(error, match=r"^redis append failed: "), \
            unavailable_as(error, "redis append"):
        raise failure


def test_another_runtime_error_is_a_bug_and_goes_through():
    with pytest.raises(RuntimeError, match="not a connection"), \
            unavailable_as(BrokerUnavailable, "redis append"):
        raise RuntimeError("not a connection problem")
