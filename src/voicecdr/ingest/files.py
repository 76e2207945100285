"""File sources for ``voicecdr cdrs import``: JSONL of canonical CDRs, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from .core import Item


def jsonl_items(path: Path) -> Iterator[Item]:
    """One Item per non-blank line; a line that is not JSON becomes a rejected Item."""
    index = 0
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Item(index, None, line_no, f"record: not valid JSON ({exc})", str(path))
            else:
                yield Item(index, raw, line_no, file=str(path))
            index += 1
