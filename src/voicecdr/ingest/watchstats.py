"""What ``voicecdr watch`` did and how far behind it is: counted here, exported to
Prometheus in the style of ``workers/metrics.py`` and summed up in its ``--json`` output."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import Counter, Gauge

RECORDS = Counter(
    "voicecdr_watch_records_total",
    "Records voicecdr watch read, and what became of them: stored, duplicate, rejected.",
    ["outcome"],
)
BEHIND_BYTES = Gauge(
    "voicecdr_watch_behind_bytes",
    "Bytes of the followed files not consumed yet (as of the last poll).",
)
BEHIND_SECONDS = Gauge(
    "voicecdr_watch_behind_seconds",
    "How long the oldest data not consumed yet has been waiting (0 when caught up).",
)
FILES = Gauge("voicecdr_watch_files", "Files being followed (open).")


@dataclass(slots=True)
class Stats:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    files: int = 0
    behind_bytes: int = 0
    behind_seconds: float = 0.0

    def add(self, read: int, stored: int, duplicates: int, rejected: int) -> None:
        self.read += read
        self.stored += stored
        self.duplicates += duplicates
        self.rejected += rejected
        RECORDS.labels("read").inc(read)
        RECORDS.labels("stored").inc(stored)
        RECORDS.labels("duplicate").inc(duplicates)
        RECORDS.labels("rejected").inc(rejected)

    def lag(self, files: int, behind_bytes: int, behind_seconds: float) -> None:
        self.files, self.behind_bytes, self.behind_seconds = files, behind_bytes, behind_seconds
        FILES.set(files)
        BEHIND_BYTES.set(behind_bytes)
        BEHIND_SECONDS.set(behind_seconds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
