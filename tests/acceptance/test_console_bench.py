"""``bench/console.py`` at a tiny size, so the benchmark cannot rot unnoticed.

It runs the real command (SQLite only, a few requests) and checks that it printed every
page beside its baseline and the target, and wrote the JSON with each page's samples.
The figures mean nothing at this size: only that they are there. (The command itself
stops if a page answers anything but 200, or the query API an error.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "console.py"


def test_console_bench_prints_every_page_beside_its_baseline(tmp_path: Path) -> None:
    output = tmp_path / "console.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--count", "12000", "--databases", "sqlite",
         "--requests", "3", "--no-cache", "--output", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| database | page" in done.stdout
    assert "targets:" in done.stdout

    record = json.loads(output.read_text())
    (database,) = record["databases"]
    assert database["database"] == "sqlite"
    assert database["rows"] >= 200  # the campaign day has calls for a page past the first
    labels = list(database["results"])
    assert labels[0] == "query API page 1"
    assert "console overview" in labels
    assert "console calls page 1" in labels
    deep = [label for label in labels if label.startswith("console calls page ")][-1]
    assert deep != "console calls page 1"  # a deep page too
    assert database["baselines"][deep] == deep.replace("console calls", "query API")
    for samples in database["results"].values():
        assert len(samples) == 3
        assert all(ms > 0 for ms in samples)
    for row in record["rows"]:
        assert row["page"] in done.stdout
        if row["baseline"] != "-":
            assert row["p50 <= 100 ms"] in ("PASS", "FAIL")
