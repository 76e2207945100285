"""``voicecdr watch``: follow files and directories and store what is appended to them,
exactly once across crashes.

Each batch of records read from a file is stored in one transaction together with the
file's new position (its device and inode, a fingerprint of its first bytes, the offset
after the last complete line), its rejects and its source's counts (storage/spool.py):
a kill -9 at any moment leaves the database at the end of some batch, and the next run
resumes there. Rotation: a file renamed away is read to its end through the handle still
open on it (or, after a restart, found beside the path by its inode) while the new file
at the path is followed from its start; a file that shrinks below its position, or whose
first bytes changed (copytruncate), is read again from its start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice, takewhile
from pathlib import Path
from threading import Event
from typing import BinaryIO

from ..errors import ConfigError, DatabaseUnavailable, StorageError
from ..storage import (
    AppStore,
    CdrWriter,
    Database,
    FileMark,
    Progress,
    Reject,
    SpoolStore,
    hour_of,
)
from .asterisk import AsteriskOptions
from .asterisk_follow import followed as asterisk_followed
from .core import Ingestor, Item, Rejection, Summary
from .follow import FOLLOWED, Followed, Position, format_of
from .timebounds import TimeLimits
from .watchstats import Stats

log = logging.getLogger("voicecdr.watch")

WATCH_BATCH = 5000  # records per transaction at most
FINGERPRINT_BYTES = 1024
# A file unchanged this long is complete for now: a one-document file, or the calls held
# of a cdr_csv file (Asterisk writes a call's records together when it ends).
SETTLE_SECONDS = 1.0
Key = tuple[int, int]  # (device, inode)


@dataclass(slots=True)
class _File:
    """A file being followed: its last committed mark and an open handle."""

    source: str
    fmt: str
    followed: Followed
    mark: FileMark
    handle: BinaryIO
    size: int = -1  # as of the last look
    behind_since: float | None = None
    quiet_since: float | None = None  # draining a rotated file: when it last grew


class Watcher:
    """Follows ``paths`` (files, or directories of files) in ``fmt`` (None: by suffix)."""

    def __init__(
        self,
        db: Database,
        paths: Sequence[Path],
        fmt: str | None = None,
        *,
        batch: int = WATCH_BATCH,
        clock: Callable[[], float] = time.time,
        limits: TimeLimits = TimeLimits(),  # noqa: B008 - frozen, so shared safely
        stats: Stats | None = None,
        done_dir: Path | None = None,
        asterisk: AsteriskOptions | None = None,
    ) -> None:
        if fmt is not None and fmt not in FOLLOWED:
            raise ConfigError(f"--format {fmt}: watch follows {', '.join(FOLLOWED)}")
        self._followed = dict(FOLLOWED)
        if asterisk is not None:  # how cdr_csv lines map (``cdrs import``'s options)
            self._followed["asterisk"] = asterisk_followed(asterisk)
        self._once = False  # this poll reads what is there and finishes (--once)
        self._paths = [Path(os.path.abspath(p)) for p in paths]
        # One-document files stored are moved here (under their path in the followed one).
        self._done_dir = Path(os.path.abspath(done_dir)) if done_dir is not None else None
        self._fmt = fmt
        self._batch = batch
        self._clock = clock
        self._limits = limits
        self._ingestor = Ingestor(AppStore(db), CdrWriter(db), clock=clock, limits=limits)
        self._spool = SpoolStore(db)
        # Positions of files closed in this run (a directory's), read again without a query.
        self._marks: dict[Key, FileMark] = {}
        self._open: dict[Key, _File] = {}
        self._at: dict[Path, Key] = {}  # a followed file path: the inode there now
        self._draining: dict[Key, _File] = {}
        # Files closed once read to their end (one-document files, and a directory's files):
        # their size and mtime then; not opened again while both stay the same.
        self._finished: dict[Key, tuple[int, int]] = {}
        self._started = False
        self._stale = False  # a store failed: positions to be read again from the database
        self.stats = stats or Stats()

    def run(self, stop: Event, *, interval: float = 0.5, once: bool = False) -> Stats:
        """Poll until ``stop`` is set (``once``: until nothing is left to read)."""
        try:
            while not stop.is_set():
                try:
                    moved = self.poll(stop, once=once)
                except DatabaseUnavailable as exc:
                    if once:
                        raise
                    log.warning("%s; trying again", exc)
                    self._stale = True
                    stop.wait(max(interval, _RETRY_SECONDS))
                    continue
                if once and not moved:
                    break
                if not moved:
                    stop.wait(interval)
        finally:
            for f in [*self._open.values(), *self._draining.values()]:
                f.handle.close()
        return self.stats

    def _resume_from_database(self) -> None:
        """Take the positions the database holds again (before the next read): a commit
        cut off by a failure may have happened or not, and only the database knows."""
        for key, f in [*self._open.items(), *self._draining.items()]:
            known = self._spool.mark(*key)
            f.mark = known or replace(
                f.mark,
                fingerprint=_fingerprint(f.handle, 0),
                fingerprint_len=0,
                offset=0,
                line=0,
                done=False,
            )
            f.size = -1
        self._marks.clear()
        self._finished.clear()
        self._stale = False

    def poll(self, stop: Event | None = None, *, once: bool = False) -> bool:
        """One look at every path, reading what is new; whether anything was consumed."""
        stop = stop or Event()
        moved = False
        self._once = once
        if self._stale:
            self._resume_from_database()
        if not self._started:
            self._started = True
            for path in self._paths:
                if not path.is_dir():
                    self._find_rotated(path)
        for key, f in list(self._draining.items()):
            moved |= self._drain(key, f, stop, once)
        for source in self._paths:
            if source.is_dir():
                for path in _files_under(source):
                    fmt = self._fmt or format_of(path)
                    if fmt is not None and self._followed[fmt].reads(path):
                        moved |= self._visit(str(source), path, fmt, stop, once, close=True)
            else:
                moved |= self._visit(
                    str(source), source, self._fmt or _by_suffix(source), stop, once
                )
        self._lag()
        return moved

    def _visit(
        self, source: str, path: Path, fmt: str, stop: Event, once: bool, *, close: bool = False
    ) -> bool:
        """Read what is new in ``path``; ``close`` it once read to its end (a directory's
        files: a spool of thousands must not hold thousands open; a file renamed within
        it is found again by its inode)."""
        try:
            st = path.stat()
        except OSError:
            return False
        key = (st.st_dev, st.st_ino)
        if self._finished.get(key) == (st.st_size, st.st_mtime_ns):
            return False
        previous = self._at.get(path)
        if previous is not None and previous != key and previous in self._open:
            # Renamed away (rotation): read to its end before the new file at the path,
            # and kept open a while for what its writer still appends before reopening.
            old = self._open.pop(previous)
            old.quiet_since = self._clock()
            self._draining[previous] = old
            self._read(previous, old, os.fstat(old.handle.fileno()).st_size, stop)
        self._at[path] = key
        if key in self._draining:
            return False  # renamed within a followed directory: its draining handle reads it
        followed = self._open.get(key) or self._follow(source, path, fmt, key)
        if followed is None:
            return False
        f = followed
        if f.mark.path != str(path):
            f.mark = replace(f.mark, path=str(path))
        if f.followed.whole and not once and time.time() - st.st_mtime < SETTLE_SECONDS:
            f.size = st.st_size  # still being written, maybe
            return False
        moved = self._read(key, f, st.st_size, stop)
        if close and key in self._open and f.mark.offset == st.st_size:
            self._finish(key, f)
        return moved

    def _follow(self, source: str, path: Path, fmt: str, key: Key) -> _File | None:
        """Open ``path`` and take its stored mark, if it is the same file."""
        try:
            handle = path.open("rb")
        except OSError as exc:
            log.warning("cannot open %s: %s", path, exc.strerror)
            return None
        if (os.fstat(handle.fileno()).st_dev, os.fstat(handle.fileno()).st_ino) != key:
            handle.close()  # replaced between the stat and the open: next poll
            return None
        mark = self._marks.get(key) or self._spool.mark(*key)
        if mark is None or _fingerprint(handle, mark.fingerprint_len) != mark.fingerprint:
            mark = FileMark(*key, source, str(path), _fingerprint(handle, 0), 0, 0, 0, False)
        f = _File(source, fmt, self._followed[fmt], mark, handle)
        self._open[key] = f
        return f

    def _find_rotated(self, path: Path) -> None:
        """After a restart: a file of ``path`` that was renamed away beside it (as
        logrotate does) before it was read to its end, to drain first."""
        try:
            current = path.stat()
            here: Key | None = (current.st_dev, current.st_ino)
        except OSError:
            here = None
        source = str(path)
        marks = self._spool.marks_at(source, source)
        lost = {(m.device, m.inode): m for m in marks if (m.device, m.inode) != here}
        if not lost or not path.parent.is_dir():
            return
        for sibling in sorted(path.parent.iterdir()):
            try:
                st = sibling.stat()
            except OSError:
                continue
            mark = lost.get((st.st_dev, st.st_ino))
            if mark is not None and st.st_size > mark.offset and sibling.is_file():
                f = self._follow(
                    mark.source,
                    sibling,
                    self._fmt or _by_suffix(path),
                    (mark.device, mark.inode),
                )
                if f is not None:
                    del self._open[(mark.device, mark.inode)]
                    f.quiet_since = self._clock()
                    self._draining[(mark.device, mark.inode)] = f

    def _drain(self, key: Key, f: _File, stop: Event, once: bool) -> bool:
        size = os.fstat(f.handle.fileno()).st_size
        moved = self._read(key, f, size, stop)
        now = self._clock()
        if moved:
            f.quiet_since = now
        elif once or now - (f.quiet_since or now) >= _DRAIN_QUIET:
            f.handle.close()
            del self._draining[key]
        return moved

    def _read(self, key: Key, f: _File, size: int, stop: Event) -> bool:
        """Store every complete record of ``f`` past its mark, batch by batch."""
        if size != f.size:
            f.size = size
            mark = f.mark
            if (
                size < mark.offset
                or _fingerprint(f.handle, mark.fingerprint_len) != mark.fingerprint
            ):
                # Truncated (copytruncate) or rewritten in place: read again from the start.
                log.info("%s: truncated or replaced; reading it from its start", mark.path)
                f.mark = replace(
                    mark,
                    fingerprint=_fingerprint(f.handle, 0),
                    fingerprint_len=0,
                    offset=0,
                    line=0,
                    done=False,
                )
        if f.mark.done:
            self._finish(key, f)
            return False
        moved = False
        while not stop.is_set() and self._batch_of(f):
            moved = True
        if f.mark.done:
            self._finish(key, f)
        now = self._clock()
        behind = size > f.mark.offset and not f.mark.done
        f.behind_since = (f.behind_since or now) if behind else None
        return moved

    def _finish(self, key: Key, f: _File) -> None:
        """A file read to its end: closed, and not looked into again until it changes."""
        st = os.fstat(f.handle.fileno())
        self._finished[key] = (st.st_size, st.st_mtime_ns)
        self._marks[key] = f.mark
        f.handle.close()
        self._open.pop(key, None)
        self._draining.pop(key, None)
        if self._done_dir is not None and f.followed.whole and f.mark.done:
            self._move_done(Path(f.mark.path), Path(f.source))

    def _move_done(self, path: Path, source: Path) -> None:
        """Move a stored one-document file to the done directory. After a crash before
        the move, the file is seen stored (its position says so) and moved then."""
        assert self._done_dir is not None
        inside = path.relative_to(source) if path != source else Path(path.name)
        target = self._done_dir / inside
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            log.warning("cannot move %s to %s: %s", path, target, exc.strerror)

    def _batch_of(self, f: _File, limit: int | None = None) -> bool:
        """Read and store one batch of ``f``; whether anything was consumed."""
        limit = limit or self._batch
        mark = f.mark
        name = mark.path
        # Its writer done for now: records held over several lines are complete.
        ended = self._once or time.time() - os.fstat(f.handle.fileno()).st_mtime >= SETTLE_SECONDS
        reading = f.followed.read(f.handle, Position(mark.offset, mark.line), name, ended)
        pieces = list(islice(reading, limit))
        if not pieces:
            return False
        last = pieces[-1][1]
        pieces += takewhile(lambda p: p[1] == last, reading)  # one position: one batch
        items = [p[0] for p in pieces if p[0] is not None]
        kept = [p[2] for p in pieces if p[0] is not None]
        end = pieces[-1][1]
        done = f.followed.whole and end.offset == os.fstat(f.handle.fileno()).st_size
        offset = end.offset if not f.followed.whole or done else mark.offset
        length = (
            min(offset, FINGERPRINT_BYTES)
            if not f.followed.whole
            else min(os.fstat(f.handle.fileno()).st_size, FINGERPRINT_BYTES)
        )
        new_mark = replace(
            mark,
            offset=offset,
            line=end.line,
            done=done,
            fingerprint=_fingerprint(f.handle, length)
            if length != mark.fingerprint_len
            else mark.fingerprint,
            fingerprint_len=length,
        )
        now = int(self._clock())
        hour = hour_of(now)

        def reject(r: Rejection) -> Reject:
            raw = kept[r.index] if 0 <= r.index < len(kept) else b""
            return Reject(
                f.source, f.fmt, r.file or name, r.line, r.call_id, "; ".join(r.errors), raw, hour
            )

        def progress(rejected: list[Rejection], conflict: Callable[[int], Rejection]) -> Progress:
            return Progress(
                f.source,
                now,
                len(items),
                [reject(r) for r in rejected],
                lambda i: reject(conflict(i)),
                new_mark,
            )

        try:
            bounds = self._limits.bounds(now)
            check = f.followed.check
            results = [check(item, raw, bounds) for item, raw in zip(items, kept, strict=True)]
            summary = self._ingestor.ingest_together(items, results, progress)
        except DatabaseUnavailable:
            raise
        except StorageError as exc:
            if len(pieces) > 1 and limit > 1:
                # One record the database refuses must not hold back the others: find it.
                return self._batch_of(f, 1)
            summary = self._refused(f, items, kept, new_mark, str(exc), now)
        f.mark = new_mark
        self.stats.add(len(items), summary.accepted, summary.duplicates, summary.rejected_total)
        return True

    def _refused(
        self, f: _File, items: list[Item], kept: list[bytes], mark: FileMark, reason: str, now: int
    ) -> Summary:
        """The one record the database refused, kept as a reject with that reason."""
        rejects = [
            Reject(
                f.source, f.fmt, item.file or mark.path, item.line, None, reason, raw, hour_of(now)
            )
            for item, raw in zip(items, kept, strict=True)
        ]
        note = Progress(f.source, now, len(items), rejects, _no_conflict, mark)
        self._ingestor.ingest_together([], [], lambda _r, _c: note)
        return Summary(rejected_total=len(rejects))

    def _lag(self) -> None:
        files = [*self._open.values(), *self._draining.values()]
        behind = sum(max(0, f.size - f.mark.offset) for f in files if not f.mark.done)
        now = self._clock()
        since = [f.behind_since for f in files if f.behind_since is not None]
        self.stats.lag(len(files), behind, now - min(since) if since else 0.0)


_DRAIN_QUIET = 2.0  # seconds a renamed-away file stays open after it last grew
_RETRY_SECONDS = 1.0  # at least, between tries while the database is unavailable


def _no_conflict(i: int) -> Reject:
    raise AssertionError("no records were sent to storage")


def _fingerprint(handle: BinaryIO, length: int) -> str:
    return hashlib.sha256(os.pread(handle.fileno(), length, 0) if length else b"").hexdigest()


def _by_suffix(path: Path) -> str:
    fmt = format_of(path)
    if fmt is None:
        raise ConfigError(
            f"{path}: cannot tell the format from the name; use --format ({', '.join(FOLLOWED)})"
        )
    return fmt


def _files_under(root: Path) -> Iterator[Path]:
    """Every file under ``root``, subdirectories included, in name order."""
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            yield Path(directory, name)
