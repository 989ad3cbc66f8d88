"""loanflow: fast, durable loan-application ingestion with a live operations dashboard."""

__version__ = "0.1.0"
