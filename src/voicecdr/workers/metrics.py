"""Prometheus metrics of the rater and the receipt sender."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CDRS_RATED = Counter(
    "voicecdr_cdrs_rated_total",
    "CDRs the rater handled: priced (final) or left pending with a reason.",
    ["outcome"],
)
RATING_LAG = Gauge(
    "voicecdr_rating_lag_seconds",
    "Age of the oldest CDR waiting for the rater (0 when none wait).",
    multiprocess_mode="mostrecent",
)
RECEIPTS = Gauge(
    "voicecdr_receipts",
    "Receipts by state: pending (never tried), failed (to be retried), delivered, dead.",
    ["state"],
    multiprocess_mode="mostrecent",
)
RECEIPT_ATTEMPTS = Counter(
    "voicecdr_receipt_attempts_total",
    "Receipt delivery attempts by outcome: delivered, failed (will retry) or dead.",
    ["outcome"],
)
