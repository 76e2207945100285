"""Prometheus metrics of the API, aggregated across ``serve --workers N`` processes."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "voicecdr_http_requests_total",
    "HTTP requests by route and outcome (ok, an API error slug, the HTTP status class, or "
    "client_disconnected).",
    ["route", "outcome"],
)
LATENCY = Histogram(
    "voicecdr_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

INGESTED = Counter(
    "voicecdr_ingest_records_total",
    "CDRs received over HTTP by source (batch, freeswitch) and outcome (accepted, duplicate, "
    "rejected).",
    ["source", "outcome"],
)


def render() -> tuple[bytes, str]:
    # prometheus_client's own convention: worker processes write to this directory.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
