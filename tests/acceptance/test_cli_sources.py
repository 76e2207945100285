"""``voicecdr cdrs sources`` after ``voicecdr cdrs import``, as an operator runs them: every
line of every file is counted under ``import:<absolute path>``, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli
from tests.acceptance.test_cli_import import CSV_HEADER, csv_row
from tests.acceptance.test_cli_kamailio import DAY_ONE, DAY_TWO
from tests.support.data import canonical


def _totals(cli: Cli, *args: str) -> dict[str, tuple[int, ...]]:
    """``cdrs sources --json``: per source, (received, stored, duplicate, rejected) over
    its hours (an import may span two), each row checked to balance."""
    totals: dict[str, tuple[int, ...]] = {}
    for row in cli("cdrs", "sources", "--json", *args).json():
        assert row["balanced"] is True
        counts = [row[k] for k in ("received", "stored", "duplicate", "rejected")]
        before = totals.get(row["source"], (0, 0, 0, 0))
        totals[row["source"]] = tuple(a + b for a, b in zip(before, counts, strict=True))
    return totals


def _jsonl(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_import_counts_good_duplicate_conflicting_and_bad_lines(
    cli: Cli, tmp_path: Path, workers: str
) -> None:
    cli.store_app("app1")
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        _jsonl(
            canonical("c1"),
            canonical("c2"),
            canonical("c1"),  # a duplicate
            canonical("c2", second=5),  # a conflict
            "not json",
            canonical("c3", phone="1x"),
            canonical("c4", appkey="ghost"),
        )
    )
    other = tmp_path / "other.jsonl"
    other.write_text(_jsonl(canonical("o1"), canonical("c1")))

    def run(*paths: Path) -> dict[str, int]:
        done = cli("cdrs", "import", "--workers", workers, "--json", *map(str, paths))
        assert done.code in (0, 1), done.err
        d = done.json()
        return {"stored": d["accepted"], "dup": d["duplicates"], "rejected": d["rejected_total"]}

    assert run(calls, other) == {"stored": 3, "dup": 2, "rejected": 4}
    assert run(calls) == {"stored": 0, "dup": 3, "rejected": 4}

    assert _totals(cli) == {
        f"import:{calls}": (14, 2, 4, 8),
        f"import:{other}": (2, 1, 1, 0),
    }
    assert _totals(cli, "--source", f"import:{other}") == {f"import:{other}": (2, 1, 1, 0)}
    human = cli("cdrs", "sources")
    assert f"import:{calls}" in human.out


def test_a_relative_path_is_counted_under_its_absolute_name(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """SQLite alone: the path is made absolute before anything is stored."""
    cli = sqlite_cli
    cli.store_app("app1")
    (tmp_path / "rel.jsonl").write_text(_jsonl(canonical("r1"), "{"))
    assert cli("cdrs", "import", "rel.jsonl").code == 1  # a line was rejected
    assert _totals(cli) == {f"import:{tmp_path / 'rel.jsonl'}": (2, 1, 0, 1)}


def test_csv_and_a_freeswitch_directory_are_counted_by_the_path_given(
    cli: Cli, tmp_path: Path
) -> None:
    cli.store_app("app1")
    table = tmp_path / "calls.csv"
    table.write_text(CSV_HEADER + csv_row("v1") + csv_row("v2", second="ten") + csv_row("v1"))
    backlog = tmp_path / "json_cdr"
    backlog.mkdir()
    (backlog / "a.cdr.json").write_text("{broken")
    assert cli("cdrs", "import", str(table), str(backlog)).code == 1
    assert _totals(cli) == {
        f"import:{table}": (3, 1, 1, 1),
        f"import:{backlog}": (1, 0, 0, 1),
    }


def test_kamailio_calls_count_under_the_file_of_their_first_row(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    day_one, day_two = tmp_path / "acc-1.csv", tmp_path / "acc-2.csv"
    day_one.write_text(DAY_ONE)
    day_two.write_text(DAY_TWO)
    args = ("cdrs", "import", "--format", "kamailio-acc", "--source-timezone", "Asia/Kolkata")
    # Alone, day one's last call has no BYE: rejected as incomplete at the end.
    assert cli(*args, str(day_one)).code == 1
    assert _totals(cli) == {f"import:{day_one}": (5, 3, 0, 2)}
    # Together, its BYE in day two completes it (counted there); the unanswered calls,
    # decided at the end, still count under day one, where their INVITEs are.
    assert cli(*args, str(day_one), str(day_two)).code == 1  # the bad time again
    assert _totals(cli) == {f"import:{day_one}": (9, 3, 3, 3), f"import:{day_two}": (1, 1, 0, 0)}
