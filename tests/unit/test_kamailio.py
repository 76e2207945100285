"""Kamailio acc exports read into Items: times, pairing's bounds, and every bad row's
reason with its line (no database: what is stored is tests/property's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import kamailio as kam
from voicecdr.ingest.core import Item, Rejection, check
from voicecdr.ingest.kamailio import AccPairing, cdr_items, epoch_of
from voicecdr.ingest.sipcauses import sip_cause
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import Cdr

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
HEADER = kam.ACC_TABLE + kam.EXTRA


def checked(items: list[Item]) -> list[Cdr | Rejection]:
    return [check(item, ANY_TIME) for item in items]


def pair(tmp_path: Path, *files: list[dict[str, str]], **options: Any) -> list[Cdr | Rejection]:
    pairing = AccPairing(UTC, **options)
    items: list[Item] = []
    for n, rows in enumerate(files):
        items += pairing.items(kam.export(tmp_path / f"acc{n}.csv", HEADER, rows))
    return checked([*items, *pairing.finish()])


def invite(callid: str, time: str, code: int = 200, **cells: str) -> dict[str, str]:
    reason = {200: "OK", 486: "Busy Here"}.get(code, "Failed")
    return kam.acc_row("INVITE", callid, code, reason, time, **kam.extras(callid), **cells)


def bye(callid: str, time: str, **cells: str) -> dict[str, str]:
    return kam.acc_row("BYE", callid, 200, "OK", time, **cells)


def errors(results: list[Cdr | Rejection]) -> list[tuple[str | None, int | None, list[str]]]:
    return [
        (Path(r.file).name if r.file else None, r.line, r.errors)
        for r in results
        if isinstance(r, Rejection)
    ]


def test_times_are_epoch_seconds_or_wall_times_of_the_source_zone() -> None:
    assert epoch_of("1796115600", NEW_YORK) == 1796115600
    assert epoch_of("1796115600.75", NEW_YORK) == 1796115600
    assert epoch_of("2026-12-01 04:00:00", NEW_YORK) == 1796115600  # EST, UTC-5
    assert epoch_of("2026-12-01 04:00:00.999", NEW_YORK) == 1796115600
    assert epoch_of("2026-12-01 09:00:00+00", NEW_YORK) == 1796115600  # psql's timestamptz
    assert epoch_of("2026-12-01T14:30:00+05:30", NEW_YORK) == 1796115600
    # Repeated when the clocks went back: the first (EDT) reading.
    assert epoch_of("2026-11-01 01:30:00", NEW_YORK) == epoch_of("2026-11-01 05:30:00Z", UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-03-08 02:30:00", "does not exist in America/New_York (the clocks went forward)"),
        ("0000-00-00 00:00:00", "is not a date and time"),
        ("9999-12-31 23:00:00", "is not between 1970 and 9999"),
        ("yesterday", "is neither YYYY-MM-DD HH:MM:SS nor epoch seconds"),
        ("2026-12-01 9:00:00", "is neither YYYY-MM-DD HH:MM:SS nor epoch seconds"),
    ],
)
def test_a_time_that_cannot_be_read_says_why(text: str, problem: str) -> None:
    with pytest.raises(
        ValueError, match="^'.*' " + problem.replace("(", r"\(").replace(")", r"\)")
    ):
        epoch_of(text, NEW_YORK)


def test_sip_codes_map_to_rfc_3398_causes() -> None:
    assert [sip_cause(c) for c in (404, 480, 486, 487, 503, 603, 699)] == [
        "UNALLOCATED_NUMBER",
        "NO_USER_RESPONSE",
        "USER_BUSY",
        "ORIGINATOR_CANCEL",
        "NORMAL_TEMPORARY_FAILURE",
        "CALL_REJECTED",
        "NORMAL_UNSPECIFIED",
    ]


def test_a_call_split_over_two_files_is_paired_when_they_are_read_together(tmp_path: Path) -> None:
    first = [invite("a", "2026-12-01 23:59:00")]
    second = [bye("a", "2026-12-02 00:01:00", from_tag="tt", to_tag="ft")]
    (call,) = pair(tmp_path, first, second)
    assert isinstance(call, Cdr)
    assert (call.second, call.connected, call.hangup_disposition) == (120, True, "callee_bye")
    # Alone, each half is reported with its line, to be replayed with the other.
    assert errors(pair(tmp_path, first)) == [
        (
            "acc0.csv",
            2,
            [
                "callid: incomplete call 'a': no BYE; import this file together with the one "
                "holding its BYE"
            ],
        )
    ]
    assert errors(pair(tmp_path, second)) == [
        (
            "acc0.csv",
            2,
            [
                "callid: BYE of 'a' with no INVITE 200 for it in the rows read; import the "
                "file holding that INVITE together with this one"
            ],
        )
    ]


def test_a_failure_is_final_once_the_rows_are_past_the_settling_time(tmp_path: Path) -> None:
    rows = [
        invite("f", "2026-12-01 10:00:00", 486),
        invite("g", "2026-12-01 10:00:01", 480),
        invite("g", "2026-12-01 10:02:00", 200),  # another branch answered: no failure
        bye("g", "2026-12-01 10:03:00"),
        invite("h", "2026-12-01 10:10:00", 200),
        invite("f", "2026-12-01 10:10:01", 200),  # too late to supersede: a new call
    ]
    pairing = AccPairing(UTC)
    items = list(pairing.items(kam.export(tmp_path / "acc.csv", HEADER, rows)))
    # f was decided when the rows reached 10:05, before h and f's own late 200 were read.
    assert [(i.raw["call_id"], i.raw["connected"]) for i in items] == [("g", True), ("f", False)]  # type: ignore[index]
    assert [r.errors[0][:30] for r in errors_of(pairing.finish())] == [
        "callid: incomplete call 'h': n",
        "callid: incomplete call 'f': n",
    ]


def errors_of(items: Any) -> list[Rejection]:
    return [r for r in checked(list(items)) if isinstance(r, Rejection)]


def test_waiting_rows_are_bounded(tmp_path: Path) -> None:
    rows = [invite(f"c{i}", f"2026-12-01 10:00:0{i}") for i in range(4)]
    rows += [bye(f"c{i}", "2026-12-01 10:01:00") for i in range(4)]
    results = pair(tmp_path, rows, most=2)
    # c0 and c1 were pushed out by c2 and c3; their BYEs then had no INVITE.
    assert [r.call_id for r in results if isinstance(r, Cdr)] == ["c2", "c3"]
    assert [(line, e[0].split(":")[1].strip()[:20]) for _, line, e in errors(results)] == [
        (2, "incomplete call 'c0'"),
        (3, "incomplete call 'c1'"),
        (6, "BYE of 'c0' with no "),
        (7, "BYE of 'c1' with no "),
    ]


def test_every_bad_row_is_rejected_with_its_line_and_the_rows_after_it_go_on(
    tmp_path: Path,
) -> None:
    long_id = "x" * 129
    rows = [
        invite("ok1", "2026-12-01 10:00:00"),
        invite("t", "2026-12-01 25:00:00"),
        invite("s", "2026-12-01 10:00:02", code=0),
        {**invite("n", "2026-12-01 10:00:03"), "callid": ""},
        {**invite(long_id, "2026-12-01 10:00:04", 486), "voicecdr_messageid": "m"},
        {**invite("k", "2026-12-01 10:00:05", 486), "voicecdr_appkey": "", "country_code": "+91"},
        bye("ok1", "2026-12-01 10:01:00"),
        {**invite("m", "2026-12-01 10:01:30"), "method": ""},
        invite("tags", "2026-12-01 10:02:00", from_tag="a", to_tag="b"),
        bye("tags", "2026-12-01 10:03:00", from_tag="a", to_tag="c"),
    ]
    results = pair(tmp_path, rows)
    assert [r.call_id for r in results if isinstance(r, Cdr)] == ["ok1"]
    assert errors(results) == [
        ("acc0.csv", 3, ["time: '2026-12-01 25:00:00' is not a date and time"]),
        ("acc0.csv", 4, ["sip_code: must be a SIP status code (100-699), not '0'"]),
        ("acc0.csv", 5, ["callid: missing"]),
        ("acc0.csv", 9, ["method: missing"]),
        (
            "acc0.csv",
            10,
            [
                "to_tag: the BYE at line 11 has other tags than its INVITE's (another "
                "dialog of the same Call-ID)"
            ],
        ),
        ("acc0.csv", 6, ["callid: must be at most 128 characters"]),
        ("acc0.csv", 7, ["voicecdr_appkey: missing", "country_code: must contain digits only"]),
    ]


def test_a_file_without_the_acc_columns_is_refused_at_its_header(tmp_path: Path) -> None:
    export = tmp_path / "calls.csv"
    export.write_text("call_id,appkey\nc1,app1\n")
    pairing = AccPairing(UTC)
    (item,) = pairing.items(export)
    assert (item.line, item.error) == (
        1,
        "header: no column method, from_tag, to_tag, callid, sip_code, sip_reason, time; "
        "export the table with a header row",
    )


def test_mysql_batch_output_is_read_with_its_escapes(tmp_path: Path) -> None:
    header = (*kam.CDRS_TABLE, "callid", "sip_code", "sip_reason", *kam.EXTRA)
    row = {
        "start_time": "2026-12-01 10:00:00",
        "end_time": "2026-12-01 10:00:00",
        "duration": "0",
        "callid": "tab\tin@id",
        "sip_code": "486",
        "sip_reason": "Busy\\Here",
        **kam.extras("m1"),
    }
    export = kam.export(tmp_path / "cdrs.tsv", header, [row], tsv=True)
    assert "tab\\tin@id" in export.read_text()
    (item,) = cdr_items(export, UTC)
    assert item.raw["call_id"] == "tab\tin@id"  # type: ignore[index]
    assert item.raw["hangup_disposition"] == "486 Busy\\Here"  # type: ignore[index]
    assert isinstance(check(item, ANY_TIME), Rejection)  # a tab is a control character


def test_an_answered_cdr_without_a_code_and_a_zero_one_without_it(tmp_path: Path) -> None:
    header = (*kam.CDRS_TABLE, "callid", *kam.EXTRA)
    base = {"start_time": "2026-12-01 10:00:00", **kam.extras("m")}
    rows = [
        {**base, "callid": "a", "end_time": "2026-12-01 10:00:10", "duration": "9.002"},
        {**base, "callid": "z", "end_time": "2026-12-01 10:00:00", "duration": "0.000"},
        {**base, "callid": "bad", "end_time": "2026-12-01 10:00:00", "duration": "-1"},
    ]
    results = checked(list(cdr_items(kam.export(tmp_path / "c.csv", header, rows), UTC)))
    answered, unanswered, bad = results
    assert isinstance(answered, Cdr)
    assert (answered.second, answered.connected, answered.hangup_cause) == (
        10,
        True,
        "NORMAL_CLEARING",
    )
    assert isinstance(unanswered, Cdr)
    assert (unanswered.connected, unanswered.hangup_cause) == (False, "")
    assert isinstance(bad, Rejection)
    assert (bad.line, bad.errors) == (4, ["duration: must be seconds (0 or more), not '-1'"])
