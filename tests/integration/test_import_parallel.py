"""Checking JSONL in worker processes gives exactly what checking in-process gives."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.data import canonical, make_app
from voicecdr.ingest.importer import import_paths, workers_for
from voicecdr.storage import Database


def test_workers_change_nothing_but_speed(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    lines = []
    for i in range(30):
        lines.append(json.dumps(canonical(f"p{i}")))
        if i % 7 == 0:
            lines += ["{broken", "", json.dumps(canonical(f"bad{i}", phone="12a"))]
    lines.append(json.dumps(canonical("p1", second=3)))  # a conflict inside the file
    source = tmp_path / "cdrs.jsonl"
    source.write_text("\n".join(lines) + "\n")
    results = []
    for workers, url in ((0, sqlite_url), (1, pg_url)):
        db = Database(url)
        try:
            make_app(db)
            result = import_paths(
                db, [source], rejects_path=tmp_path / f"r{workers}.jsonl", workers=workers
            )
        finally:
            db.close()
        results.append(result.to_dict() | {"rejects_file": None})
    assert results[0] == results[1]
    assert (results[0]["accepted"], results[0]["rejected_total"]) == (30, 11)
    assert (tmp_path / "r0.jsonl").read_text() == (tmp_path / "r1.jsonl").read_text()


def test_workers_only_for_big_jsonl(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("{}\n")
    assert workers_for(small, "jsonl") == 0
    assert workers_for(small, "jsonl", 3) == 3
    assert workers_for(small, "csv", 3) == 0
