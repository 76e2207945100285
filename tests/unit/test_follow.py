"""The readers ``watch`` resumes from a position: whatever the moments the file is read
at, each complete record comes out exactly once, at the position just after it, and a
line still being written never does."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.support import asterisk as ast
from voicecdr.ingest.asterisk import AsteriskOptions, BadLine, Leg, parse_line
from voicecdr.ingest.asterisk_calls import CallMerger
from voicecdr.ingest.asterisk_follow import followed as asterisk_followed
from voicecdr.ingest.follow import FOLLOWED, Position, complete_lines, line_reader, parse_jsonl

_LINE = st.one_of(
    st.just(b""),
    st.just(b"   "),
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"\n", b"x")),
)


def _read_in_steps(data: bytes, cuts: list[int]) -> Iterator[tuple[bytes, Position]]:
    """Read ``data`` as a follower does while it is written: after each of ``cuts`` bytes
    have been written, from the position the previous read ended at."""
    at = Position(0, 0)
    for cut in [*sorted(cuts), len(data)]:
        for text, after in complete_lines(io.BytesIO(data[:cut]), at):
            yield text, after
            at = after


@given(st.lists(_LINE, max_size=20), st.lists(st.integers(0, 400), max_size=8), st.booleans())
def test_each_complete_line_once_whatever_the_reads(
    lines: list[bytes], cuts: list[int], bom: bool
) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + b"\n" for line in lines)
    assume(bom or not data.startswith(b"\xef\xbb\xbf"))  # a file's first 3 bytes: its BOM
    data += b"partial, no newline yet"
    read = list(_read_in_steps(data, cuts))
    assert [text for text, _ in read] == [line + b"\n" for line in lines]
    assert [after.line for _, after in read] == list(range(1, len(lines) + 1))
    ends = [after.offset for _, after in read]
    assert all(data[end - 1 : end] == b"\n" for end in ends)


def test_line_reader_numbers_lines_and_indexes_records_and_skips_blank_ones() -> None:
    data = b'{"a": 1}\r\n\n  \nnot json\n{"b": 2}'
    pieces = list(line_reader(parse_jsonl)(io.BytesIO(data), Position(0, 0), "f.jsonl"))
    records = [(p[0].index, p[0].line, p[0].raw, p[0].error is None) for p in pieces if p[0]]
    assert records == [(0, 1, {"a": 1}, True), (1, 4, None, False)]
    assert pieces[-1][1] == Position(len(data) - len(b'{"b": 2}'), 4)
    assert pieces[0][2] == b'{"a": 1}'  # kept for a replay: the line without its newline


def test_a_csv_file_resumed_mid_way_reads_its_header_again() -> None:
    data = b"call_id,second\nc1,5\nc2,6\n"
    read = FOLLOWED["csv"].read
    first = list(read(io.BytesIO(data), Position(0, 0), "f.csv"))
    assert [p[0] is None for p in first] == [True, False, False]  # the header, two rows
    resumed = list(read(io.BytesIO(data), first[1][1], "f.csv"))
    ((item, after, raw),) = resumed
    assert item is not None
    assert (item.raw["call_id"], item.raw["second"], item.line) == ("c2", 6, 3)  # type: ignore[index]
    assert (after, raw) == (Position(len(data), 3), b"call_id,second\nc2,6\n")
    replayed = FOLLOWED["csv"].replay(raw, "f.csv")
    assert replayed.raw == item.raw


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=12),
    st.lists(st.integers(0, 6000), max_size=6),
    st.integers(1, 4),
    st.integers(1, 6),
)
def test_asterisk_calls_come_out_once_and_whole_whatever_the_reads(
    legs: list[int], cuts: list[int], batch: int, window: int
) -> None:
    """Read as ``watch`` reads a growing Master.csv (batches from the last position, a
    batch never ending between pieces of one position), every call comes out once, as
    ``cdrs import`` merges it, and no position passes a call not yet given out."""
    conf = ast.Settings(newcdrcolumns=True)
    calls = [ast.call(f"c{i}", 1_764_000_000 + i, n) for i, n in enumerate(legs)]
    lines = ast.interleaved(calls, conf)
    data = "".join(lines).encode()
    options = AsteriskOptions.build(sets=["service=notification"])
    # A small merge window: calls given out while later ones are held, stragglers too.
    read = asterisk_followed(options, window).read
    at, out = Position(0, 0), []
    for cut, ended in [*((c, False) for c in sorted(cuts)), (len(data), True)]:
        while True:
            reading = read(io.BytesIO(data[:cut]), at, "Master.csv", ended)
            pieces = list(itertools.islice(reading, batch))
            if not pieces:
                break
            last = pieces[-1][1]
            pieces += itertools.takewhile(lambda p: p[1] == last, reading)  # noqa: B023
            out += [(p[0].line, p[0].raw) for p in pieces if p[0] is not None]
            at = last
    assert at.offset == len(data)

    def parse(line: str) -> Leg | BadLine:
        return parse_line(line.encode(), options)

    merger = CallMerger(options, "Master.csv", window)  # as `cdrs import` reads the file
    imported = [(i.line, i.raw) for n, x in enumerate(lines, 1) for i in merger.add(parse(x), n)]
    imported += [(i.line, i.raw) for i in merger.finish()]
    key = lambda r: r[0]  # noqa: E731 - a call's first line
    assert sorted(out, key=key) == sorted(imported, key=key)
