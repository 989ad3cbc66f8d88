"""The durable queue between the API and the processors."""

from __future__ import annotations

from loanflow.broker.base import AppendOutcome, AppendResult, Broker, Delivery, Submission

__all__ = ["AppendOutcome", "AppendResult", "Broker", "Delivery", "Submission"]
