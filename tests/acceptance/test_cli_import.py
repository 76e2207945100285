"""``voicecdr cdrs import`` with CSV, JSONL and FreeSWITCH files, as an operator runs it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import orjson

from tests.acceptance.conftest import Cli
from tests.support import freeswitch as fs
from tests.support.data import canonical

CSV_HEADER = (
    "call_id,appkey,service,messageid,phone,country_code,show_phone,time,start_time,"
    "end_time,second,connected,hangup_cause,hangup_disposition,ivr_result,record_url\n"
)


def csv_row(call_id: str, **changes: str) -> str:
    values = {
        "call_id": call_id,
        "appkey": "app1",
        "service": "group_call",
        "messageid": "m-1",
        "phone": "810022458",
        "country_code": "91",
        "show_phone": "085944247",
        "time": "2019-09-09T09:00:00+08:00",
        "start_time": "2019-09-09T09:00:01+08:00",
        "end_time": "2019-09-09T09:00:20+08:00",
        "second": "19",
        "connected": "true",
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_disposition": "recv_bye",
        "ivr_result": "12#",
        "record_url": "",
        **changes,
    }
    return ",".join(values.values()) + "\n"


def test_import_csv_jsonl_and_a_freeswitch_backlog(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    calls = tmp_path / "calls.csv"
    calls.write_text(
        CSV_HEADER
        + csv_row("v1")
        + csv_row("v2", connected="no", start_time="", end_time="", second="0")
        + csv_row("v3", second="ten")
        + '"v4,broken\n'
    )
    lines = tmp_path / "more.jsonl"
    lines.write_text(json.dumps(canonical("j1")) + "\n")
    # mod_json_cdr's error log: what it could not post, in each encoding, rotated subdirs.
    backlog = tmp_path / "json_cdr"
    (backlog / "2026-11-27-10-00-00").mkdir(parents=True)
    text = orjson.dumps(fs.encode_values(fs.cdr("fs-plain")))
    (backlog / "fs-plain.cdr.json").write_bytes(text + b"\n")
    encoded = quote(orjson.dumps(fs.cdr("fs-url")), safe="").encode()
    (backlog / "2026-11-27-10-00-00" / "fs-url.cdr.json").write_bytes(encoded + b"\n")
    (backlog / "a_fs-b64.cdr.json").write_bytes(base64.b64encode(orjson.dumps(fs.cdr("fs-b64"))))
    (backlog / "fs-bad.cdr.json").write_bytes(
        orjson.dumps(fs.cdr("fs-bad", drop_vars=("voicecdr_appkey",)))
    )
    (backlog / "notes.txt").write_text("not a CDR, not read")

    result = cli("cdrs", "import", str(calls), str(lines), str(backlog))
    assert result.code == 1, result.err
    summary = result.json()
    assert (summary["accepted"], summary["duplicates"], summary["rejected_total"]) == (6, 0, 3)
    rejects_file = Path(summary["rejects_file"])
    assert rejects_file.parent == tmp_path  # the working directory, not beside the inputs
    assert rejects_file.name.startswith("voicecdr-rejects-")
    rejects = [json.loads(line) for line in rejects_file.read_text().splitlines()]
    assert [(r["file"], r.get("line"), r["errors"]) for r in rejects] == [
        (str(calls), 4, ["second: must be a whole number, not 'ten'"]),
        (str(calls), 5, ["record: has 1 cells, the header has 16"]),
        (str(backlog / "fs-bad.cdr.json"), 1, ["variables.voicecdr_appkey: missing"]),
    ]
    assert "importing" not in result.err  # no progress bar when not on a terminal

    again = cli("cdrs", "import", "--rejects", str(tmp_path / "r.jsonl"), str(backlog))
    assert again.json()["duplicates"] == 3
    assert again.json()["rejects_file"] == str(tmp_path / "r.jsonl")


def test_import_with_explicit_format_and_clear_refusals(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    data = tmp_path / "export.txt"
    data.write_text(CSV_HEADER + csv_row("x1"))
    unknown = cli("cdrs", "import", str(data))
    assert unknown.code == 2
    assert "cannot tell the format" in unknown.err
    assert "--format" in unknown.err
    done = cli("cdrs", "import", "--format", "csv", str(data))
    assert done.code == 0, done.err
    assert done.json()["accepted"] == 1
    assert done.json()["rejects_file"] is None
    assert not list(tmp_path.glob("voicecdr-rejects-*"))  # no empty rejects file
    wrong = cli("cdrs", "import", "--format", "csv", str(tmp_path))
    assert wrong.code == 2
    assert "only FreeSWITCH CDRs are read from one" in wrong.err


def test_import_international_numbers_then_stats_by_region(cli: Cli, tmp_path: Path) -> None:
    # E.164: phones in international form (no country code) are split and placed in their
    # region; the same call in both forms is a duplicate; stats groups and filters by it.
    cli.store_app("app1")
    calls = tmp_path / "calls.csv"
    calls.write_text(
        CSV_HEADER
        + csv_row("us", phone="+1 212 555 0123", country_code="")
        + csv_row("ca", phone="+1 (416) 555-0123", country_code="")
        + csv_row("in", phone="00919876543210", country_code="")
        + csv_row("bad", phone="+1 555 555 0123", country_code="")
    )
    lines = tmp_path / "calls.jsonl"
    again = canonical("in", phone="9876543210", country_code="91", time="2019-09-09 09:00:00")
    again.update(
        messageid="m-1",
        start_time="2019-09-09T09:00:01+08:00",
        end_time="2019-09-09T09:00:20+08:00",
        hangup_cause="NORMAL_CLEARING",
        hangup_disposition="recv_bye",
        ivr_result="12#",
    )
    lines.write_text(json.dumps(again) + "\n")
    result = cli("cdrs", "import", "--rejects", str(tmp_path / "r.jsonl"), str(calls), str(lines))
    assert result.code == 1, result.err
    summary = orjson.loads(result.out)
    assert (summary["accepted"], summary["duplicates"], summary["rejected_total"]) == (3, 1, 1)
    rejects = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["errors"] for r in rejects] == [
        ["phone: '+1 555 555 0123': not a valid number of any region of +1"]
    ]
    window = ("--from", "2019-09-09", "--to", "2019-09-10")
    by_region = cli("stats", "app1", *window, "--by", "region", "--format", "json", "--check")
    assert by_region.code == 0, by_region.err
    groups = orjson.loads(by_region.out)["groups"]
    assert {g["key"]["region"]: g["attempts"] for g in groups} == {"CA": 1, "IN": 1, "US": 1}
    canada = cli("stats", "app1", *window, "--region", "ca", "--format", "json")
    assert orjson.loads(canada.out)["total"]["attempts"] == 1
    refused = cli("stats", "app1", *window, "--region", "CAN")
    assert refused.code == 2
    assert "--region" in refused.err
