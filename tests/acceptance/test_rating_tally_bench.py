"""``bench/rating_tally.py`` at a tiny size, so the benchmark cannot rot unnoticed: it runs
the real command and checks that it printed its three figures. (At this size they mean
nothing: only that they are there.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "rating_tally.py"


def test_rating_tally_bench_prints_its_figures(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--count", "12000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    figures = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^  (\S+) .*?(\d+\.\d+)$", done.stdout, re.MULTILINE)
    }
    assert set(figures) == {"Rater.drain", "priced_tally", "floor"}, done.stdout
    assert all(value > 0 for value in figures.values()), done.stdout
