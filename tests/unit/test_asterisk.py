"""Asterisk cdr_csv lines: layouts, quoting, times, dispositions, the mapping, one call
per linkedid. The lines are written as cdr_csv writes them (tests/support/asterisk.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import asterisk as ast
from voicecdr.errors import ConfigError
from voicecdr.ingest.asterisk import (
    AsteriskOptions,
    BadLine,
    Leg,
    _wall_readings,
    layout,
    line_item,
    parse_line,
)
from voicecdr.ingest.asterisk_calls import CallMerger, asterisk_items
from voicecdr.ingest.core import Rejection, check
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import Cdr

T0 = 1_764_496_800  # 2025-11-30 10:00:00 UTC
OPTIONS = AsteriskOptions.build(sets=["service=notification", "country_code=91"])
ALL = ast.Settings(newcdrcolumns=True)


def leg(text: str, options: AsteriskOptions = OPTIONS) -> Leg:
    parsed = parse_line(text.encode(), options)
    assert isinstance(parsed, Leg), parsed
    return parsed


def reasons(text: str, options: AsteriskOptions = OPTIONS) -> list[str]:
    parsed = parse_line(text.encode(), options)
    assert isinstance(parsed, BadLine), parsed
    return parsed.reasons


def checked(text: str, options: AsteriskOptions = OPTIONS) -> Cdr | Rejection:
    return check(line_item(text.encode(), options, line=7, file="Master.csv"), ANY_TIME)


@pytest.mark.parametrize(
    ("settings", "count"),
    [
        (ast.Settings(loguniqueid=False, loguserfield=False), 16),
        (ast.Settings(loguniqueid=True, loguserfield=False), 17),
        (ast.Settings(), 18),
        (ast.Settings(loguniqueid=False, loguserfield=False, newcdrcolumns=True), 19),
        (ast.Settings(loguniqueid=True, loguserfield=False, newcdrcolumns=True), 20),
        (ALL, 21),
    ],
)
def test_every_layout_is_told_by_its_column_count(settings: ast.Settings, count: int) -> None:
    record = ast.answered(T0, uniqueid="u-1", linkedid="l-1", userfield="m-9", sequence=4)
    assert layout(count) == tuple(settings.columns())
    parsed = leg(record.line(settings))
    assert (parsed.start, parsed.answer, parsed.end) == (T0, T0 + 5, T0 + 65)
    assert parsed.billsec == 60
    assert parsed.sequence == (4 if settings.newcdrcolumns else 0)
    expected_id = "l-1" if settings.newcdrcolumns else "u-1" if settings.loguniqueid else None
    if expected_id is None:
        assert parsed.call_id.startswith("asterisk-")
    else:
        assert parsed.call_id == expected_id
    assert parsed.cells.get("userfield") == ("m-9" if settings.loguserfield else None)


def test_a_lone_optional_column_is_userfield_when_the_operator_says_so() -> None:
    settings = ast.Settings(loguniqueid=False, loguserfield=True)
    options = AsteriskOptions.build(sets=["service=notification"], lone_column="userfield")
    parsed = leg(ast.answered(T0, userfield="m-9").line(settings), options)
    assert parsed.cells["userfield"] == "m-9"
    assert "uniqueid" not in parsed.cells


@pytest.mark.parametrize("count", [1, 15, 22, 30])
def test_a_count_cdr_csv_never_writes_is_refused_with_the_count(count: int) -> None:
    text = ",".join(['"x"'] * count)
    assert reasons(text) == [
        f"record: has {count} columns; cdr_csv writes 16 to 21 "
        "(see docs/asterisk.md#4-column-layouts)"
    ]


def test_quotes_and_commas_inside_fields_are_read_back() -> None:
    src = 'He said "hi", twice'
    text = ast.answered(T0, src=src, userfield='a,"b"').line(ALL)
    parsed = leg(text)
    assert parsed.cells["src"] == src
    assert parsed.cells["userfield"] == 'a,"b"'
    assert parsed.cells["clid"] == f'"Caller, Inc." <{src}>'


def test_local_times_are_read_in_the_source_timezone() -> None:
    settings = ast.Settings(timezone="Asia/Kolkata")
    options = AsteriskOptions.build(timezone="Asia/Kolkata", sets=["service=notification"])
    parsed = leg(ast.answered(T0).line(settings), options)
    assert (parsed.start, parsed.answer, parsed.end) == (T0, T0 + 5, T0 + 65)
    # The same text read as UTC is 5h30 later: the option matters.
    assert leg(ast.answered(T0).line(settings)).start == T0 + 19_800


BACK = 1_761_440_400  # 2025-10-26 01:00 UTC: Berlin's 03:00 CEST becomes 02:00 CET


def test_the_repeated_hour_is_placed_by_the_duration() -> None:
    berlin = ast.Settings(timezone="Europe/Berlin")
    options = AsteriskOptions.build(timezone="Europe/Berlin", sets=["service=notification"])
    # Placed in the first 02:30, ended in the second: duration says which is which.
    record = ast.answered(BACK - 1800, ring=10, talk=3590)
    parsed = leg(record.line(berlin), options)
    assert (parsed.start, parsed.answer, parsed.end) == (record.start, record.answer, record.end)
    # Placed in the second 02:10 (only the end is unambiguous, at 03:05).
    late = ast.answered(BACK + 600, ring=5, talk=3600)
    parsed = leg(late.line(berlin), options)
    assert (parsed.start, parsed.answer, parsed.end) == (late.start, late.answer, late.end)
    # Wholly inside the repeated hour: cannot be told; the first occurrence is taken.
    inside = ast.answered(BACK + 60, ring=5, talk=60)
    parsed = leg(inside.line(berlin), options)
    assert parsed.start == inside.start - 3600
    assert parsed.end == inside.end - 3600


def test_a_time_that_clocks_skipped_is_refused() -> None:
    text = ast.answered(T0).line(ALL).replace("2025-11-30 10:00:00", "2025-03-30 02:30:00")
    options = AsteriskOptions.build(timezone="Europe/Berlin", sets=["service=notification"])
    assert "start: 2025-03-30 02:30:00 does not exist in Europe/Berlin (clocks went forward)" in (
        reasons(text, options)
    )


def test_bad_cells_are_refused_together_with_their_column() -> None:
    text = (
        ast.answered(T0)
        .line(ALL)
        .replace('"2025-11-30 10:00:05"', '"yesterday"')
        .replace(",60,", ",-1,")
        .replace('"ANSWERED"', '"SOMETIMES"')
    )
    assert reasons(text) == [
        "billsec: must be a whole number of seconds, not '-1'",
        "disposition: unknown 'SOMETIMES' (one of ANSWERED, NO ANSWER, BUSY, CONGESTION, "
        "FAILED, CANCEL)",
        "answer: 'yesterday' must be YYYY-MM-DD HH:mm:ss",
    ]


def test_broken_quoting_and_bytes_are_refused() -> None:
    assert reasons('"app1","a"b"' + ",x" * 14)[0].startswith("record: not a cdr_csv line")
    assert reasons('"unterminated')[0].startswith("record: not a cdr_csv line")
    bad = parse_line(b'"\xff"' + b',"x"' * 15, OPTIONS)
    assert isinstance(bad, BadLine)
    assert bad.reasons[0].startswith("record: not UTF-8")


@pytest.mark.parametrize(
    ("disposition", "cause"),
    [
        ("NO ANSWER", "NO_ANSWER"),
        ("BUSY", "USER_BUSY"),
        ("CONGESTION", "NORMAL_CIRCUIT_CONGESTION"),
        ("FAILED", "NORMAL_TEMPORARY_FAILURE"),
        ("CANCEL", "ORIGINATOR_CANCEL"),
    ],
)
def test_each_disposition_maps_to_connected_and_a_cause(disposition: str, cause: str) -> None:
    cdr = checked(ast.unanswered(T0, disposition=disposition).line(ALL))
    assert isinstance(cdr, Cdr)
    assert (cdr.connected, cdr.second, cdr.start_time) == (False, 0, None)
    assert (cdr.hangup_cause, cdr.hangup_disposition) == (cause, disposition)


def test_an_answered_record_maps_to_the_canonical_fields() -> None:
    record = ast.answered(T0, dst="+91810022458", userfield="msg-7", linkedid="1764496800.9")
    cdr = checked(record.line(ALL))
    assert isinstance(cdr, Cdr)
    assert cdr.call_id == "1764496800.9"
    assert (cdr.appkey, cdr.messageid, cdr.phone, cdr.country_code) == (
        "app1",
        "msg-7",
        "810022458",
        "91",
    )
    assert (cdr.show_phone, cdr.time, cdr.start_time, cdr.end_time) == (
        "085944247",
        T0,
        T0 + 5,
        T0 + 65,
    )
    assert (cdr.second, cdr.connected, cdr.hangup_cause, cdr.hangup_disposition) == (
        60,
        True,
        "NORMAL_CLEARING",
        "ANSWERED",
    )


def test_a_dialplan_answer_before_an_unanswered_dial_is_not_a_connection() -> None:
    # Answer() then Dial() that nobody picks up: Asterisk keeps the answer time and billsec
    # of the caller's channel, and the disposition of the dial.
    record = ast.answered(T0).but(disposition="NO ANSWER")
    cdr = checked(record.line(ALL))
    assert isinstance(cdr, Cdr)
    assert (cdr.connected, cdr.second, cdr.start_time, cdr.end_time) == (False, 0, None, T0 + 65)


def test_reasons_name_the_asterisk_column() -> None:
    text = ast.answered(T0, accountcode="", dst="s").line(ALL)
    rejected = checked(text)
    assert isinstance(rejected, Rejection)
    assert (rejected.file, rejected.line) == ("Master.csv", 7)
    assert rejected.errors == ["accountcode: missing", "dst: must contain digits only"]
    answered_without_answer = ast.answered(T0).but(answer=None).line(ALL)
    rejected = checked(answered_without_answer)
    assert isinstance(rejected, Rejection)
    assert rejected.errors == ["answer: is required for a connected call"]


def test_map_and_set_choose_where_fields_come_from() -> None:
    options = AsteriskOptions.build(
        maps=["service=dcontext", "messageid=uniqueid", "appkey=peeraccount"],
        sets=["country_code=44"],
    )
    record = ast.answered(T0).but(extra={"dcontext": "verification", "peeraccount": "app2"})
    cdr = checked(record.line(ALL), options)
    assert isinstance(cdr, Cdr)
    assert (cdr.appkey, cdr.messageid, cdr.country_code) == ("app2", "1764496800.1", "44")
    wrong = checked(record.but(extra={"dcontext": "from-internal"}).line(ALL), options)
    assert isinstance(wrong, Rejection)
    assert wrong.errors[0] == "peeraccount: missing"
    assert wrong.errors[1].startswith("dcontext: must be one of")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maps": ["appkey"]}, "--map 'appkey': write FIELD=VALUE"),
        ({"maps": ["time=start"]}, "--map 'time=start': 'time' is not one of appkey,"),
        ({"maps": ["appkey=account"]}, "--map 'appkey=account': 'account' is not a cdr_csv"),
        ({"sets": ["service=sales"]}, "--set service='sales': must be one of group_call,"),
        ({"sets": ["country_code=+91"]}, "--set country_code='+91': must be 1-4 digits"),
        (
            {"maps": ["appkey=src"], "sets": ["appkey=a"]},
            "--set 'appkey=a': appkey is already given",
        ),
        ({"timezone": "Mars/Base"}, "--source-timezone: unknown IANA timezone 'Mars/Base'"),
    ],
)
def test_unusable_options_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AsteriskOptions.build(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


def test_service_has_no_default() -> None:
    assert AsteriskOptions().missing() == ["service"]
    assert AsteriskOptions.build(maps=["service=dcontext"]).missing() == []


def merged(lines: list[str], window: int = 1000) -> list[Cdr | Rejection]:
    merger = CallMerger(OPTIONS, "Master.csv", window)
    items = []
    for number, text in enumerate(lines, start=1):
        items += merger.add(parse_line(text.encode(), OPTIONS), number)
    items += merger.finish()
    return [check(item, ANY_TIME) for item in items]


def test_the_records_of_one_linkedid_are_one_call() -> None:
    # A fork: two phones ring, the second answers; then a blind transfer to a third.
    ring1 = ast.unanswered(T0, ring=12, disposition="NO ANSWER", sequence=1, dst="810000001")
    ring2 = ast.answered(T0 + 1, ring=10, talk=50, sequence=2, dst="810000002")
    after = ast.answered(T0 + 61, ring=4, talk=30, sequence=3, dst="810000003")
    other = ast.unanswered(T0 + 5, linkedid="other", uniqueid="other")
    [lone, call] = merged([line.line(ALL) for line in (ring2, other, ring1, after)])
    assert isinstance(call, Cdr)
    assert isinstance(lone, Cdr)
    assert lone.call_id == "other"
    assert call.call_id == "1764496800.1"
    assert call.phone == "810000001"  # the first leg: earliest start, then sequence
    assert (call.time, call.start_time, call.end_time) == (T0, T0 + 11, T0 + 95)
    assert (call.second, call.connected, call.hangup_disposition) == (80, True, "ANSWERED")


def test_overlapping_answered_legs_count_once() -> None:
    first = ast.answered(T0, ring=5, talk=100, sequence=1)
    overlapping = ast.answered(T0 + 20, ring=5, talk=100, sequence=2)  # attended transfer
    [call] = merged([first.line(ALL), overlapping.line(ALL)])
    assert isinstance(call, Cdr)
    assert (call.start_time, call.end_time, call.second) == (T0 + 5, T0 + 125, 120)


def test_an_unanswered_call_takes_the_disposition_of_its_last_leg() -> None:
    busy = ast.unanswered(T0, ring=3, disposition="BUSY", sequence=1)
    no_answer = ast.unanswered(T0, ring=30, disposition="NO ANSWER", sequence=2)
    [call] = merged([no_answer.line(ALL), busy.line(ALL)])
    assert isinstance(call, Cdr)
    assert (call.connected, call.hangup_disposition, call.hangup_cause) == (
        False,
        "NO ANSWER",
        "NO_ANSWER",
    )


def test_a_straggler_past_the_window_is_a_second_record_of_the_same_call() -> None:
    first = ast.answered(T0, sequence=1)
    late = ast.answered(T0 + 100, sequence=2)
    fillers = [ast.unanswered(T0 + i, linkedid=f"f{i}").line(ALL) for i in range(3)]
    results = merged([first.line(ALL), *fillers, late.line(ALL)], window=2)
    ids = [r.call_id for r in results]
    assert ids.count("1764496800.1") == 2  # the store takes the first, refuses the second


def test_a_repeated_record_is_merged_once_then_repeated_as_a_duplicate() -> None:
    record = ast.answered(T0).line(ALL)
    [call, again] = merged([record, record])
    assert isinstance(call, Cdr)
    assert call == again


def test_a_call_with_a_bad_record_is_not_stored_in_part() -> None:
    good = ast.answered(T0, sequence=1).line(ALL)
    bad = ast.answered(T0 + 90, sequence=2).line(ALL).replace('"ANSWERED"', '"MAYBE"')
    results = merged([bad, good])
    assert [r.line for r in results if isinstance(r, Rejection)] == [1, 2]
    assert not [r for r in results if isinstance(r, Cdr)]
    assert results[1].errors == [  # type: ignore[union-attr]
        "call_id: call '1764496800.1' (lines 2) not stored: its record on line 1 was "
        "rejected; fix it and import the file again"
    ]


def test_a_file_is_read_line_by_line_with_blank_lines_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    first = ast.answered(T0, linkedid="a").line(ALL)
    second = ast.unanswered(T0, linkedid="b").line(ALL)
    path.write_bytes(b"\xef\xbb\xbf" + first.encode() + b"\n" + second.encode())
    items = list(asterisk_items(path, OPTIONS))
    assert [(i.line, i.raw["call_id"]) for i in items] == [(1, "a"), (3, "b")]  # type: ignore[index]
    assert [i.index for i in items] == [0, 1]


@settings(max_examples=300, deadline=None)
@given(
    tz=st.sampled_from(sorted(ast.CHANGES)),
    choice=st.integers(0, 1),
    offset=st.integers(-5400, 5400),
)
def test_a_wall_time_means_exactly_the_instants_that_show_it(
    tz: str, choice: int, offset: int
) -> None:
    changes = ast.CHANGES[tz]
    epoch = changes[choice % len(changes)] + offset
    zone_info = ZoneInfo(tz)

    def shown(e: int) -> datetime:
        return datetime.fromtimestamp(e, zone_info).replace(tzinfo=None)

    readings = _wall_readings(shown(epoch), zone_info)
    # Every instant that shows the same wall time (offsets move by quarter hours).
    same = [e for e in range(epoch - 7200, epoch + 7201, 900) if shown(e) == shown(epoch)]
    assert readings == same
