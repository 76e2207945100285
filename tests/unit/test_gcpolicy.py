from __future__ import annotations

import gc

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
