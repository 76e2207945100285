"""``bench/scale.py`` at a tiny size, so the harness cannot rot unnoticed.

It runs the real command (SQLite only, sub-second load runs) and checks that it printed
the table and wrote the JSON with every figure present: each query case for both worker
counts (rate and latency), serve and export memory, ingest and rating, each with its
baseline and, where the issue sets one, a PASS/FAIL verdict. The figures themselves mean
nothing at this size and on a shared machine: only that they are there. The same run uses
``--before-src`` to serve another checkout's product (here this checkout's own ``src``) as
"before w1"; a second, smaller run shows one phase alone and nothing of it without that option.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCALE = REPO / "bench" / "scale.py"
# Two rounds (the medians are checked), each timed run as short as still answers requests.
TINY = ["--databases", "sqlite", "--count", "10000", "--seconds", "0.1", "--latency-seconds",
        "0.1", "--raw-seconds", "0.05", "--rounds", "2", "--no-cache"]  # fmt: skip
QUERY_CASES = [
    f"{tenant} tenant {page} x100, serve w{workers}: {kind}"
    for tenant in ("big", "small")
    for page in ("page 1", "page 500")
    for workers in (1, 2)
    for kind in ("req/s", "p50 / p99 ms at half max")
] + [
    f"big tenant pages 1-500 in turn x100, serve w{workers}: {kind}"
    for workers in (1, 2)
    for kind in ("req/s", "p50 / p99 ms at half max")
]


def _scale(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
    return subprocess.run(
        [sys.executable, str(SCALE), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_scale_harness_prints_every_query_figure_and_serves_before_src_in_the_same_rounds(
    tmp_path: Path,
) -> None:
    """The query phase with ``--before-src``: every case for both worker counts, each
    beside the older checkout's server, from the same rounds."""
    output = tmp_path / "scale.json"
    src = REPO / "src"
    done = _scale(tmp_path, *TINY, "--phases", "query", "--before-src", str(src),
                  "--output", str(output))  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| database | figure" in done.stdout
    assert "targets:" in done.stdout
    assert f"before w1: serve --workers 1 of {src / 'voicecdr'}" in done.stdout

    record = json.loads(output.read_text())
    assert record["before"] == str(src / "voicecdr")
    table = record["table"]
    figures = [row["figure"] for row in table]
    for case in QUERY_CASES:
        assert any(figure.startswith(case) for figure in figures), case
    for prefix in ("serve w1: peak RSS MB", "serve w2: peak RSS MB"):
        assert any(figure.startswith(prefix) for figure in figures), prefix
    _check_rows(table, verdicts=9)

    def row(figure: str) -> dict[str, str]:
        (found,) = (row for row in table if row["figure"].startswith(figure))
        return found

    cases = [case.rsplit(", serve", 1)[0] for case in QUERY_CASES[::4]]
    assert len(cases) == 5  # four cases and the sweep
    for case in cases:  # this checkout's w1 (product) beside the before one (baseline)
        for kind in ("req/s", "p50 / p99 ms at half max"):
            now, beside = (
                row(f"{case}, serve w1: {kind}"),
                row(f"{case}, serve w1 vs before w1: {kind}"),
            )
            assert beside["product"] == now["product"]
            assert beside["baseline"].endswith(" (before w1)")
            assert beside["ratio"].endswith("x")

    (database,) = record["databases"]
    assert database["database"] == "sqlite"
    assert len(database["query"]["cases"]) == 5  # four cases and the sweep
    for case in database["query"]["cases"]:  # each figure is a median of every round
        servers = ("w1", "before", "baseline", "w2")
        assert {name: len(rates) for name, rates in case["rounds"].items()} == dict.fromkeys(
            ("raw", *servers, *(f"{name} p99 ms" for name in servers)), 2
        )
        assert case["product"]["1"]["rate"] in [round(r, 2) for r in case["rounds"]["w1"]]
        assert case["before"]["rate"] in [round(r, 2) for r in case["rounds"]["before"]]
        # p99 too: the run of median p99 (of two, the lower) is the one reported.
        reported, lower = case["latency"]["1"]["p99_ms"], min(case["rounds"]["w1 p99 ms"])
        assert reported == pytest.approx(lower, abs=0.01)  # rounded to 3 and 2 places
        reported, lower = case["before_latency"]["p99_ms"], min(case["rounds"]["before p99 ms"])
        assert reported == pytest.approx(lower, abs=0.01)


def test_scale_harness_runs_only_the_phases_named_and_nothing_of_before_src_without_it(
    tmp_path: Path,
) -> None:
    """Export, ingest and rating (a test of their own, so the two runs go side by side):
    their figures, and nothing of the query phase or of --before-src."""
    output = tmp_path / "scale.json"
    done = _scale(tmp_path, *TINY, "--phases", "export,ingest,rating", "--ingest-count", "1000",
                  "--rating-count", "1000", "--export-rows", "200,2000",
                  "--output", str(output))  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "before" not in done.stdout
    record = json.loads(output.read_text())
    assert "before" not in record
    (database,) = record["databases"]
    assert set(database) == {"database", "version", "load", "export", "ingest", "rating"}
    table = record["table"]
    figures = [row["figure"] for row in table]
    for prefix in (
        "voicecdr export",
        "ingest voicecdr cdrs import",
        "ingest POST /v1/cdrs",
        "rating with receipts",
        "rating no receipts",
    ):
        assert any(figure.startswith(prefix) for figure in figures), prefix
    assert not any("tenant" in figure or "serve" in figure for figure in figures), figures
    _check_rows(table, verdicts=1)
    assert len(database["ingest"]) == 2 * 3  # raw, import and batch API, each round
    assert len(database["export"]) == 2


def _check_rows(table: list[dict[str, str]], verdicts: int) -> None:
    """Every row has our figure; a verdict exactly where there is a target; a baseline and
    ratio wherever the harness measures one; at least ``verdicts`` PASS/FAIL."""
    for row in table:
        assert row["product"], row
        assert bool(row["target"]) == (row["result"] in ("PASS", "FAIL")), row
    with_baseline = [row for row in table if "export" not in row["figure"]]
    assert all(
        row["baseline"] and row["ratio"] for row in with_baseline if "w2: p50" not in row["figure"]
    )
    assert sum(row["result"] != "" for row in table) >= verdicts


def test_scale_harness_refuses_a_before_src_that_is_not_a_checkouts_src(tmp_path: Path) -> None:
    done = _scale(tmp_path, *TINY, "--phases", "query", "--before-src", str(REPO))
    assert done.returncode != 0
    assert "`import voicecdr` resolves to" in done.stderr
    assert f"not to {REPO / 'voicecdr'} (give the checkout's src directory" in done.stderr
    assert "[sqlite]" not in done.stderr  # stopped before building the data set


def test_scale_harness_refuses_a_before_src_of_another_schema(tmp_path: Path) -> None:
    other = tmp_path / "src" / "voicecdr"
    (other / "storage").mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "storage" / "__init__.py").write_text("")
    (other / "storage" / "migrate.py").write_text("def head_revision():\n    return 'other'\n")
    done = _scale(tmp_path, *TINY, "--phases", "query", "--before-src", str(tmp_path / "src"))
    assert done.returncode != 0
    assert "its schema head is other, this checkout's is " in done.stderr
