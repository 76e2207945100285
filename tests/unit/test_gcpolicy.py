from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from voicecdr.gcpolicy import rare_collections


def test_thresholds_come_back_after_overlapping_uses() -> None:
    before = gc.get_threshold()
    outer = rare_collections()
    inner = rare_collections()
    outer.__enter__()
    inner.__enter__()
    raised = gc.get_threshold()
    outer.__exit__(None, None, None)  # left first, as another thread might
    assert gc.get_threshold() == raised
    inner.__exit__(None, None, None)
    assert raised[0] > before[0]
    assert gc.get_threshold() == before


def test_a_server_process_exempts_its_startup_objects_from_the_gc(tmp_path: Path) -> None:
    # In a process of its own, as `voicecdr serve` runs it: freezing this one's would last.
    script = (
        "import gc; from voicecdr.api import factory; factory(); "
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    env = {
        **os.environ,
        "VOICECDR_DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
        "VOICECDR_RATE_LIMIT_STATE": str(tmp_path / "rl.sqlite"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    frozen, still_tracked = map(int, done.stdout.split())
    assert frozen > 10_000  # the modules and the app
    assert still_tracked < frozen / 10  # what a full collection still has to walk
