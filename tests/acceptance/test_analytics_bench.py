"""``bench/analytics.py`` at a tiny size, so the benchmark cannot rot unnoticed.

It runs the real command (SQLite only, sub-second loops) and checks that it printed the
table and wrote the JSON with every query, each source timed in every round. The figures
mean nothing at this size: only that they are there. (The command itself stops if the
rollups' report and the plain GROUP BY's differ.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from voicecdr.storage import head_revision

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "analytics.py"
QUERIES = [
    "Q1 30 whole days by day x country",
    "Q1 30 days not day-aligned by day x country",
    "Q2 last 24 whole hours by hour",
    "Q2 campaign day's 24 hours by hour",
]


def test_analytics_bench_prints_every_query(tmp_path: Path) -> None:
    output = tmp_path / "analytics.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--count", "5000", "--databases", "sqlite", "--seconds",
         "0.2", "--rounds", "2", "--no-cache", "--output", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| database | query" in done.stdout
    assert "targets:" in done.stdout

    record = json.loads(output.read_text())
    assert record["schema"] == head_revision()  # the schema it ran on: this version's
    assert [r["query"] for r in record["results"]] == QUERIES
    for result in record["results"]:
        assert result["database"] == "sqlite"
        assert result["cdrs"] > 0  # each window holds calls of the big tenant
        assert result["to"] > result["from"]
        assert len(result["rounds"]) == 2
        for one in result["rounds"]:
            assert set(one) == {"rollups", "group by"}
            assert all(one[s]["ms"] and one[s]["rate"] > 0 for s in one)
        row = result["row"]
        assert row["query"] in done.stdout
        assert row["p50 <= 20 ms"] in ("PASS", "FAIL")
        assert row[">= 20x"] in ("PASS", "FAIL")
    aligned, loose = record["results"][:2]
    assert (aligned["to"] - aligned["from"]) % 3600 == 0  # whole local days
    assert (loose["from"] - aligned["from"]) % 3600 != 0  # off the hours
