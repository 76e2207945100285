"""``voicecdr cdrs import`` refuses what it must not store, each with its reason in the
rejects file, and stores everything else (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.acceptance.conftest import Cli
from tests.support import freeswitch as fs
from tests.support.data import canonical

HEADER = "call_id,appkey,service,phone,country_code,show_phone,time,second,connected\n"


def test_import_refuses_far_off_times_other_digits_and_broken_escapes(
    cli: Cli, tmp_path: Path
) -> None:
    cli.store_app("app1")
    lines = tmp_path / "calls.jsonl"
    lines.write_bytes(
        b"\n".join(
            orjson.dumps(record)
            for record in [
                canonical("j-ok"),
                canonical("j-9999", time="9999-12-31 09:00:00", connected=False),
                canonical("j-0001", time="0001-01-01 09:00:00", connected=False),
                canonical("j-2001", time="2001-01-01 09:00:00", connected=False),
                canonical("j-digits", show_phone="\u0660\u0668\u0665"),
            ]
        )
    )
    table = tmp_path / "calls.csv"
    table.write_text(
        HEADER
        + "c-ok,app1,group_call,810022458,91,0859,2019-09-09T09:00:00+08:00,0,false\n"
        + "c-second,app1,group_call,810022458,91,0859,2019-09-09T09:00:00+08:00,\uff10,false\n"
        + "c-phone,app1,group_call,81\uff10,91,0859,2019-09-09T09:00:00+08:00,0,false\n"
        + "c-year,app1,group_call,810022458,91,0859,0001-01-01T00:00:00Z,0,false\n",
        encoding="utf-8",
    )
    backlog = tmp_path / "json_cdr"
    backlog.mkdir()
    (backlog / "a-ok.cdr.json").write_bytes(orjson.dumps(fs.cdr("fs-ok")))
    broken = fs.cdr("fs-broken", extra_vars={"voicecdr_messageid": "5f%2"})
    (backlog / "b-broken.cdr.json").write_bytes(orjson.dumps(broken))

    result = cli(
        "cdrs", "import", "--rejects", "rejects.jsonl", str(lines), str(table), str(backlog)
    )
    assert result.code == 1, result.err
    summary = result.json()
    assert (summary["accepted"], summary["rejected_total"]) == (3, 8)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["call_id"] or r["line"]: r["errors"] for r in rejects}
    assert reasons["j-9999"][0].endswith(
        "is more than 15 minutes in the future; check the sender's clock and UTC offset "
        "(VOICECDR_INGEST_MAX_FUTURE_MINUTES)"
    )
    assert reasons["j-0001"][0].endswith("raise VOICECDR_INGEST_MAX_AGE_DAYS")
    assert reasons["j-digits"] == [
        "show_phone: must use the ASCII digits 0-9, not '\u0660' (U+0660)"
    ]
    assert reasons["c-second"] == ["second: must be a whole number, not '\uff10'"]
    assert reasons["c-phone"] == ["phone: must use the ASCII digits 0-9, not '\uff10' (U+FF10)"]
    assert reasons["c-year"][0].startswith("time: 0001-01-01T00:00:00Z is more than 3660 days ago")
    assert reasons["fs-broken"] == [
        "variables.voicecdr_messageid: has a broken percent-escape '%2': % must be followed "
        "by two hex digits (a literal % is written %25)"
    ]

    # An operator loading an older backlog raises the limit for that run.
    cli.env["VOICECDR_INGEST_MAX_AGE_DAYS"] = "0"
    again = cli("cdrs", "import", "--rejects", "again.jsonl", str(lines))
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1)  # j-2001
    retried = [json.loads(x) for x in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [(r["call_id"], r["errors"][0].split(" ", 2)[2]) for r in retried][:2] == [
        ("j-9999", reasons["j-9999"][0].split(" ", 2)[2]),
        ("j-0001", "is before 1970"),
    ]


def test_a_byte_order_mark_does_not_cost_the_first_record(cli: Cli, tmp_path: Path) -> None:
    # Windows tools start UTF-8 text with a BOM; the CSV reader always skipped it.
    cli.store_app("app1")
    for workers in ("0", "1"):
        lines = tmp_path / f"bom-{workers}.jsonl"
        records = [canonical(f"b{workers}-1"), canonical(f"b{workers}-2")]
        lines.write_bytes(b"\xef\xbb\xbf" + b"\n".join(map(orjson.dumps, records)) + b"\n")
        result = cli("cdrs", "import", "--workers", workers, str(lines))
        assert result.code == 0, result.out + result.err
        assert (result.json()["accepted"], result.json()["rejected_total"]) == (2, 0)
    backlog = tmp_path / "bom.json"
    backlog.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(fs.cdr("fs-bom")))
    result = cli("cdrs", "import", str(backlog))
    assert result.code == 0, result.out + result.err
