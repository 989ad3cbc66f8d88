"""Metrics: a per-process recorder, a shared per-second series, the live hub, Prometheus export.

    Recorder ──take_delta()──▶ Flusher ──each second──▶ MetricsSeries (SQLite file | Redis)
                                                               │ merged across processes
    EventPublisher ──batches──▶ EventLog (SQLite | stream)     ▼
                │                       └──────────▶ LiveHub ◀── Aggregator ──▶ /v1/metrics/summary
                └ processors, operator actions        │ 2 Hz                 └─▶ /metrics
                                                      ▼
                                                  WS /v1/live
"""
