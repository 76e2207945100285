"""``voicecdr export`` over loopback against ``voicecdr serve``, as a customer runs it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Cli, Result, Server
from tests.support.client import count_by_group, load, recent_records
from tests.support.data import make_app
from tests.support.receiver import Answer, receiving
from voicecdr.storage import Database
from voicecdr.timefmt import zone

RECORDS = 400


@pytest.fixture
def loaded(
    tmp_path: Path, sqlite_url: str
) -> Iterator[tuple[Cli, Server, list[dict[str, object]]]]:
    """An app at the default rate limit (1 request/second), one at 100/s, three days of
    calls for each, and ``voicecdr serve`` on a free loopback port."""
    cli = Cli(tmp_path, sqlite_url)
    records: list[dict[str, object]] = []
    # Stored in this process: the commands that store them have tests of their own.
    with closing(Database(sqlite_url)) as db:
        for appkey, rate_limit in (("acme", 1.0), ("fast", 100.0)):
            make_app(db, appkey, secretkey=f"{appkey}-secret", rate_limit=rate_limit)
            records.extend(recent_records(appkey, RECORDS, seed=len(records)))
        load(db, records)
    server = Server(cli)
    try:
        server.wait_ready()
        yield cli, server, records
    finally:
        server.stop()


def bounds(days: float = 3) -> tuple[str, str]:
    """The last ``days`` and a minute: --from as ISO 8601, --to in the API's format."""
    now = datetime.now(zone("Asia/Shanghai")).replace(microsecond=0)
    start = now - timedelta(days=days)
    return start.isoformat(), (now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")


def rate_limited_answers(server: Server) -> float:
    metrics = httpx.get(f"{server.url}/metrics").text
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("voicecdr_http_requests_total{") and 'outcome="rate_limited"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_three_day_export_at_one_request_per_second_gets_every_record_once(
    loaded: tuple[Cli, Server, list[dict[str, object]]], tmp_path: Path
) -> None:
    cli, server, records = loaded
    expected = count_by_group([r for r in records if r["appkey"] == "acme"])
    start, end = bounds()
    cli.env.update(
        VOICECDR_BASE_URL=server.url, VOICECDR_APPKEY="acme", VOICECDR_SECRETKEY="acme-secret"
    )
    began = time.monotonic()
    group = cli("export", "--voice-type", "0", "--from", start, "--to", end, "-o", "group.csv")
    elapsed = time.monotonic() - began
    assert group.code == 0, group.err
    # Four spans (three days and a minute), each one page: 4 requests paced at just over
    # a second apart, and not one answered rate_limited.
    assert elapsed > 3
    assert rate_limited_answers(server) == 0
    time.sleep(1.1)  # the next export is a new process with a new pacer: let 1/s refill
    voice = cli(
        "export",
        "--voice-type",
        "1",
        "--from",
        start,
        "--to",
        end,
        "--format",
        "jsonl",
        "-o",
        "voice.jsonl",
    )
    assert voice.code == 0, voice.err
    assert rate_limited_answers(server) == 0
    assert "exporting" not in group.err  # no progress bar when stderr is not a terminal

    with (tmp_path / "group.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == expected[0]
    assert len({r["id"] for r in rows}) == len(rows)
    assert list(rows[0]) == [
        "id",
        "result",
        "cycle",
        "time",
        "start_time",
        "end_time",
        "phone",
        "basic_price",
        "second",
        "countryCode",
        "messageid",
        "customer_price",
        "show_phone",
        "size",
        "ivr_result",
    ]
    lines = (tmp_path / "voice.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == expected[1]
    assert len({json.loads(line)["id"] for line in lines}) == expected[1]

    manifest = group.json()  # stdout is not a terminal: the manifest as JSON
    assert manifest == json.loads((tmp_path / "group.csv.manifest.json").read_text())
    assert manifest["rows"] == expected[0]
    assert Decimal(manifest["cost_sum"]) == 0  # the app has no rate plan: all pending at 0
    assert not (tmp_path / "group.csv.checkpoint.json").exists()


def test_stdout_export_and_credentials_from_options(
    loaded: tuple[Cli, Server, list[dict[str, object]]],
) -> None:
    cli, server, _ = loaded
    start, end = bounds(days=1)
    result = cli(
        "export",
        "--base-url",
        server.url,
        "--appkey",
        "fast",
        "--secretkey",
        "fast-secret",
        "--voice-type",
        "1",
        "--from",
        start,
        "--to",
        end,
        "--format",
        "jsonl",
        "--rate",
        "100",
        "--extended",
    )
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert rows
    assert all("cost_status" in row for row in rows)
    manifest = json.loads(result.err)  # the data owns stdout; the manifest goes to stderr
    assert manifest["rows"] == len(rows)
    assert manifest["file"] == "-"


def test_an_interrupted_export_resumes_to_the_same_file(
    loaded: tuple[Cli, Server, list[dict[str, object]]], tmp_path: Path
) -> None:
    cli, server, _ = loaded
    start, end = bounds()
    args = [
        "export",
        "--base-url",
        server.url,
        "--appkey",
        "fast",
        "--secretkey",
        "fast-secret",
        "--voice-type",
        "0",
        "--from",
        start,
        "--to",
        end,
        "--page-size",
        "10",
        "--rate",
        "25",
    ]
    whole = cli(*args, "-o", "whole.csv")
    assert whole.code == 0, whole.err

    checkpoint = tmp_path / "cut.csv.checkpoint.json"
    process = subprocess.Popen(
        cli.command(*args, "-o", "cut.csv"),
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if checkpoint.exists() and json.loads(checkpoint.read_text())["done_through"]:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # no chance to tidy up: the worst interruption
    process.communicate()
    assert checkpoint.exists()
    assert not (tmp_path / "cut.csv.manifest.json").exists()

    resumed = cli(*args, "-o", "cut.csv")
    assert resumed.code == 0, resumed.err
    assert (tmp_path / "cut.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert resumed.json()["sha256"] == whole.json()["sha256"]
    assert not checkpoint.exists()

    # Run once more, the export is complete: nothing to resume, and it says so.
    again = cli(*args, "-o", "cut.csv")
    assert again.code == 1
    assert again.err.strip().splitlines() == [
        "Error: cut.csv is a complete export (see cut.csv.manifest.json): "
        "nothing to resume; use --overwrite to export it again, or another -o file"
    ]
    assert (tmp_path / "cut.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_export_errors_are_one_line_with_exit_status_1(
    loaded: tuple[Cli, Server, list[dict[str, object]]],
) -> None:
    cli, server, _ = loaded
    start, end = bounds(days=0.5)
    wrong = cli(
        "export",
        "--base-url",
        server.url,
        "--appkey",
        "acme",
        "--secretkey",
        "nope",
        "--voice-type",
        "0",
        "--from",
        start,
        "--to",
        end,
        "-o",
        "x.csv",
    )
    assert wrong.code == 1
    assert wrong.err.strip().startswith("Error: auth_failed: appkey or secretkey is incorrect")
    naive = cli(
        "export",
        "--appkey",
        "a",
        "--secretkey",
        "b",
        "--voice-type",
        "0",
        "--from",
        "2026-11-20T00:00:00",
        "--to",
        end,
    )
    assert naive.code == 2
    assert "offset" in naive.err
    missing = cli("export", "--voice-type", "0", "--from", start, "--to", end)
    assert missing.code == 2
    assert "--appkey" in missing.err


def export_args(server: Server, *more: str, secretkey: str = "fast-secret") -> list[str]:
    return [
        "export",
        "--base-url",
        server.url,
        "--appkey",
        "fast",
        "--secretkey",
        secretkey,
        "--voice-type",
        "0",
        "--rate",
        "25",
        *more,
    ]


def one_line(result: Result) -> str:
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), result.err
    return lines[0]


RERUN = "run the same command again"


def test_a_refused_export_says_what_to_fix_and_not_to_rerun(
    loaded: tuple[Cli, Server, list[dict[str, object]]], tmp_path: Path
) -> None:
    cli, server, _ = loaded
    start, end = bounds(days=0.5)
    wrong = cli(*export_args(server, "--from", start, "--to", end, "-o", "x.csv", secretkey="no"))
    assert wrong.code == 1
    line = one_line(wrong)
    assert line.startswith("Error: auth_failed: appkey or secretkey is incorrect"), line
    assert "--secretkey" in line, line
    assert RERUN not in line, line
    assert "x.csv has no records yet" in line, line  # what is kept is named, truly
    assert (tmp_path / "x.csv").exists()

    # Year 1 reaches the server as 0001-01-01 (not 1-01-01), which it keeps no records of.
    for window in (
        ("0001-01-01 00:00:00", "0001-01-02 00:00:00"),
        ("0001-01-01 00:00:00", "9999-12-31 23:59:59"),
    ):
        old = cli(*export_args(server, "--from", window[0], "--to", window[1], "-o", "old.csv"))
        assert old.code == 1
        line = one_line(old)
        assert line.startswith("Error: out_of_window"), line
        assert "--from" in line, line
        assert RERUN not in line, line
        assert "old.csv" in line, line
        assert "--overwrite" in line, line
        (tmp_path / "old.csv").unlink()
        (tmp_path / "old.csv.checkpoint.json").unlink()

    late = cli(*export_args(server, "--from", "9999-12-30 00:00:00", "--to", "9999-12-31 23:59:59"))
    assert "Traceback" not in late.err, late.err
    assert "bug" not in late.err, late.err
    assert late.code in (0, 1), late.err

    beyond = cli(*export_args(server, "--from", "0001-01-01T00:00:00+14:00", "--to", end))
    assert beyond.code == 2
    line = one_line(beyond)
    assert "--from" in line, line
    assert "0001-01-01T00:00:00+14:00" in line, line


def test_rerunning_a_complete_export_on_a_terminal_draws_no_progress_bar(
    loaded: tuple[Cli, Server, list[dict[str, object]]],
) -> None:
    cli, server, _ = loaded
    start, end = bounds(days=0.5)
    args = export_args(server, "--from", start, "--to", end, "-o", "done.csv")
    first = cli.on_terminal(*args, stream="stderr")
    assert first.code == 0, first.err
    assert "exporting" in first.err  # the bar is drawn when an export runs
    again = cli.on_terminal(*args, stream="stderr")
    assert again.code == 1
    assert again.err.strip().splitlines() == [
        "Error: done.csv is a complete export (see done.csv.manifest.json): nothing to "
        "resume; use --overwrite to export it again, or another -o file"
    ]


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_bounds_the_attempts_at_a_failing_endpoint(sqlite_cli: Cli, retries: int) -> None:
    failing = Answer(status=503, body=b"busy")
    with receiving(lambda n, received: failing) as endpoint:
        start, end = bounds(days=0.5)
        done = sqlite_cli(
            *("export", "--base-url", endpoint.url, "--appkey", "a", "--secretkey", "s"),
            *("--voice-type", "0", "--from", start, "--to", end, "--rate", "100"),
            *("--retries", str(retries), "-o", "out.csv"),
        )
    assert done.code == 1, done.err
    assert RERUN in one_line(done)
    assert len(endpoint.received) == 1 + retries
