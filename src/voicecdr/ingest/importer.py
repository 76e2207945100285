"""``voicecdr cdrs import``: files and directories through the ingest core.

Streams every path through :class:`~voicecdr.ingest.core.Ingestor` in one pass, writes
each rejected record to the rejects file as it happens (so memory stays constant however
many are rejected) and keeps the first few for the printed summary.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, Protocol

import click
import orjson

from ..errors import ConfigError, VoiceCdrError
from ..gcpolicy import rare_collections
from ..storage import AppStore, CdrWriter, Database
from ..timefmt import zone
from . import fastjson, files, kamailio, parallel
from .asterisk import AsteriskOptions
from .asterisk_calls import asterisk_items
from .core import Ingestor, Rejection, Summary
from .timebounds import TimeLimits

# Rows per transaction: big enough that the commit's fsync is a small share of the time.
IMPORT_BATCH = 20_000
SHOWN_REJECTS = 100  # rejections kept for the summary; all of them go to the file
# Files from this size on are checked by worker processes (see workers_for).
PARALLEL_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class ImportResult:
    summary: Summary
    rejects_file: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "rejected_total": self.summary.rejected_total,
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


def default_rejects_path(now: float) -> Path:
    """``voicecdr-rejects-<UTC time>.jsonl`` in the working directory: the inputs may sit
    in a directory we must not write to (FreeSWITCH's log directory, a read-only mount)."""
    return Path.cwd() / (
        f"voicecdr-rejects-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}.jsonl"
    )


class _RejectsFile:
    """Opened on the first rejection, so a clean import leaves no empty file behind."""

    def __init__(self, path: Path, stack: ExitStack) -> None:
        self.path = path
        self._stack = stack
        self._handle: IO[bytes] | None = None

    @property
    def used(self) -> bool:
        return self._handle is not None

    def write(self, rejection: Rejection) -> None:
        if self._handle is None:
            try:
                self._handle = self._stack.enter_context(self.path.open("wb"))
            except OSError as exc:
                raise VoiceCdrError(
                    f"cannot write the rejects file {self.path}: {exc.strerror}"
                ) from None
        self._handle.write(orjson.dumps(rejection.to_dict()) + b"\n")


def import_paths(
    db: Database,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    rejects_path: Path | None = None,
    progress: bool = False,
    now: float | None = None,
    workers: int | None = None,
    limits: TimeLimits = TimeLimits(),  # noqa: B008 - frozen, so shared safely
    source_timezone: str = "UTC",
    asterisk: AsteriskOptions | None = None,
) -> ImportResult:
    """Import every path (files or FreeSWITCH directories) in order, in one summary.

    ``workers``: processes that parse and validate JSONL (0: none, all in this process;
    None: :func:`parallel.worker_count` for files of at least ``PARALLEL_BYTES``).
    Every CDR time must be within ``limits`` of ``now`` (default: when the import starts).
    ``source_timezone``: the IANA zone of times written without an offset (Kamailio's).
    ``asterisk``: how Asterisk cdr_csv files (``fmt="asterisk"``, never guessed) map to
    canonical records (default: ``AsteriskOptions(timezone=source_timezone)``).
    """
    started = time.time() if now is None else now
    formats = [files.detect_format(p) if fmt == "auto" else fmt for p in paths]
    try:
        source_tz = zone(source_timezone)
    except ValueError as exc:
        raise ConfigError(f"--source-timezone: {exc}") from None
    for path, path_fmt in zip(paths, formats, strict=True):
        if path.is_dir() and path_fmt != "freeswitch":
            raise ConfigError(f"{path} is a directory: only FreeSWITCH CDRs are read from one")
    with ExitStack() as stack:
        stack.enter_context(rare_collections())
        rejects = _RejectsFile(rejects_path or default_rejects_path(started), stack)
        summary = Summary(keep=SHOWN_REJECTS, on_reject=rejects.write)
        # On PostgreSQL one batch is stored while the next is checked (see Ingestor).
        background = db.writes_in_server
        ingestor = Ingestor(
            AppStore(db), CdrWriter(db), batch_size=IMPORT_BATCH, background=background
        )
        bounds = limits.bounds(started)
        total = sum(files.input_bytes(p, f) for p, f in zip(paths, formats, strict=True))
        bar: _Bar = stack.enter_context(_progress(total) if progress else nullcontext(_NoBar()))
        # Kamailio acc rows of all the paths are paired as one stream (a call's BYE may
        # be in the next file); what still waits at the end is decided by finish().
        acc = kamailio.AccPairing(source_tz)
        for path, path_fmt in zip(paths, formats, strict=True):
            count = workers_for(path, path_fmt, workers)
            source = import_source(path)
            if count:
                chunks = parallel.checked_chunks(path, bar.update, bounds, count)
                ingestor.ingest_chunks(chunks, summary, source=source)
            elif path_fmt == "asterisk":
                options = asterisk or AsteriskOptions(timezone=source_timezone)
                calls = asterisk_items(path, options, bar.update)
                ingestor.ingest(calls, summary, bounds, source=source)
            elif path_fmt == "jsonl":
                chunks = fastjson.checked_chunks(path, bar.update, bounds)
                ingestor.ingest_chunks(chunks, summary, source=source)
            elif path_fmt == kamailio.ACC:
                ingestor.ingest(acc.items(path, bar.update), summary, bounds, source=source)
            elif path_fmt == kamailio.CDRS:
                cdrs = kamailio.cdr_items(path, source_tz, bar.update)
                ingestor.ingest(cdrs, summary, bounds, source=source)
            else:
                items = files.items(path, path_fmt, bar.update)
                ingestor.ingest(items, summary, bounds, source=source)
        if kamailio.ACC in formats:
            # What waited to the end counts under the file of its call's first row.
            for name, calls in groupby(acc.finish(), attrgetter("file")):
                ingestor.ingest(calls, summary, bounds, source=import_source(Path(name)))
    return ImportResult(summary, rejects.path if rejects.used else None)


def import_source(path: Path) -> str:
    """The name ``cdrs sources`` counts a path's records under: ``import:`` and the path
    made absolute (as given, symlinks kept: as ``watch`` names its paths)."""
    return f"import:{os.path.abspath(path)}"


def workers_for(path: Path, fmt: str, requested: int | None = None) -> int:
    """How many checking processes an import of ``path`` uses (0: none)."""
    if fmt != "jsonl":
        return 0
    if requested is not None:
        return requested
    # Starting worker interpreters takes a while: worth it for big files only
    # (docs/performance.md#checking-processes-for-big-imports).
    big = path.stat().st_size >= PARALLEL_BYTES
    return parallel.worker_count() if big else 0


class _Bar(Protocol):
    def update(self, n_steps: int) -> None: ...


class _NoBar:
    def update(self, n_steps: int) -> None:
        return None


def _progress(total: int) -> AbstractContextManager[_Bar]:
    # On stderr, so stdout stays the summary alone (JSON when piped).
    return click.progressbar(length=total, label="importing", file=sys.stderr, width=0)
