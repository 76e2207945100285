"""Exporting a window of records to CSV or JSONL, resumable, with a manifest.

The output is written span by span (a span is one server-allowed query window, at most
24 hours). After each span the file is flushed to disk and a checkpoint beside it,
``FILE.checkpoint.json``, records how far the export got, how many bytes of the file are
complete, and the running row count and cost sum. Running the same export again after an
interruption truncates the file to that length and carries on with the next span. At the
end ``FILE.manifest.json`` records the row count, the exact cost sum and the file's
SHA-256, and the checkpoint is removed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from ._client import Client
from ._exceptions import ExportError
from ._models import EXTENDED_FIELDS, Record, VoiceType
from ._timeutil import format_api_time, parse_api_time

FORMATS = ("csv", "jsonl")
_CHECKPOINT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportJob:
    """What to export. ``start``/``end`` are naive wall-clock times in ``timezone``."""

    base_url: str
    appkey: str
    voice_type: int
    start: datetime
    end: datetime
    timezone: str
    format: str = "csv"
    messageid: str | None = None
    extended: bool = False

    def key(self) -> dict[str, Any]:
        """Identifies the job in its checkpoint (no secret in it)."""
        data = asdict(self)
        data["start"] = format_api_time(self.start)
        data["end"] = format_api_time(self.end)
        return data

    @property
    def fields(self) -> tuple[str, ...]:
        fields = VoiceType(self.voice_type).fields
        return fields + EXTENDED_FIELDS if self.extended else fields


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an export produced, for reconciliation. ``cost_sum`` sums each record's
    ``cost`` when the endpoint sent it, else size x customer_price (connected) or
    basic_price (unconnected)."""

    file: str
    format: str
    rows: int
    cost_sum: str
    sha256: str
    job: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent, never a rounded float
    return str(value)


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")  # a JSON number, written exactly as received
    return json.dumps(value, ensure_ascii=False)


def jsonl_line(row: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> str:
    """One flat row as a JSON object, Decimals as exact JSON numbers."""
    items = (f"{json.dumps(k)}:{_json_value(v)}" for k, v in row.items() if k not in skip)
    return "{" + ",".join(items) + "}\n"


class _Sink(Protocol):
    def write(self, text: str, /) -> int: ...


class _Writer:
    def __init__(self, stream: _Sink, job: ExportJob) -> None:
        self._stream = stream
        self._fields = job.fields
        self._csv = csv.writer(stream, lineterminator="\n") if job.format == "csv" else None
        self._skip = frozenset() if job.extended else frozenset(EXTENDED_FIELDS)

    def header(self) -> None:
        if self._csv is not None:
            self._csv.writerow(self._fields)

    def write(self, record: Record) -> None:
        if self._csv is not None:
            self._csv.writerow([_cell(record.raw.get(name)) for name in self._fields])
        else:
            self._stream.write(jsonl_line(record.raw, self._skip))


def sidecar(output: Path, kind: str) -> Path:
    """``FILE.checkpoint.json`` or ``FILE.manifest.json`` beside ``output``."""
    return output.with_name(f"{output.name}.{kind}.json")


def kept_rows(output: Path) -> int | None:
    """How many records an unfinished export to ``output`` has kept (its checkpoint's
    count), or None when there is no checkpoint to resume from."""
    try:
        state = json.loads(sidecar(output, "checkpoint").read_text(encoding="utf-8"))
        return int(state["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # Write-then-rename: an interruption leaves the old file or the new one, never half.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingStream:
    """A text sink that also hashes what passes through it (for a streamed export)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def write(self, text: str) -> int:
        self.digest.update(text.encode("utf-8"))
        return self._stream.write(text)


def export_stream(
    client: Client,
    job: ExportJob,
    stream: IO[str],
    *,
    on_record: Callable[[Record], None] | None = None,
) -> Manifest:
    """Export ``job`` to an open text stream (e.g. stdout): no checkpoint, so no resume;
    the manifest's ``sha256`` is of the UTF-8 text written."""
    sink = _HashingStream(stream)
    writer = _Writer(sink, job)
    writer.header()
    rows, cost = 0, Decimal(0)
    for record in client.iter_records(
        job.voice_type, job.start, job.end, job.messageid, extended=True
    ):
        writer.write(record)
        rows += 1
        cost += record.charge
        if on_record is not None:
            on_record(record)
    stream.flush()
    return Manifest("-", job.format, rows, format(cost, "f"), sink.digest.hexdigest(), job.key())


def export(
    client: Client,
    job: ExportJob,
    output: Path,
    *,
    overwrite: bool = False,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[datetime | None], None] | None = None,
) -> Manifest:
    """Export ``job`` into ``output`` with ``client``; resumes from a checkpoint of the
    same job. ``on_start`` is told, once the export can start (nothing refused it), the
    wall time an interrupted export resumes after, or None; ``on_record`` sees every
    record written (both for a progress bar)."""
    if job.format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    checkpoint_path = sidecar(output, "checkpoint")
    state = _start(job, output, checkpoint_path, overwrite)
    done_through = (
        parse_api_time(state["done_through"]) if state["done_through"] is not None else None
    )
    if on_start is not None:
        on_start(done_through)
    rows, cost = int(state["rows"]), Decimal(state["cost_sum"])
    with output.open("a", encoding="utf-8", newline="") as stream:
        writer = _Writer(stream, job)
        for lo, hi in client.iter_split(job.start, job.end):
            if done_through is not None and hi <= done_through:
                continue
            for record in client.iter_span(
                job.voice_type, lo, hi, messageid=job.messageid, extended=True
            ):
                writer.write(record)
                rows += 1
                cost += record.charge
                if on_record is not None:
                    on_record(record)
            stream.flush()
            os.fsync(stream.fileno())
            state.update(
                done_through=format_api_time(hi),
                bytes=output.stat().st_size,
                rows=rows,
                cost_sum=format(cost, "f"),
            )
            _write_json(checkpoint_path, state)
    manifest = Manifest(
        output.name, job.format, rows, format(cost, "f"), file_sha256(output), job.key()
    )
    _write_json(sidecar(output, "manifest"), manifest.to_dict())
    checkpoint_path.unlink()
    return manifest


def _start(job: ExportJob, output: Path, checkpoint_path: Path, overwrite: bool) -> dict[str, Any]:
    """The checkpoint state to continue from: a matching checkpoint's, or a fresh one
    (with the file created and, for CSV, its header written)."""
    if checkpoint_path.exists() and not overwrite:
        state: dict[str, Any] = json.loads(checkpoint_path.read_text(encoding="utf-8"))
        if state.get("version") != _CHECKPOINT_VERSION or state.get("job") != job.key():
            raise ExportError(
                f"{checkpoint_path} belongs to a different export; give another output file "
                "or --overwrite to start over"
            )
        if not output.exists() or output.stat().st_size < state["bytes"]:
            raise ExportError(f"{output} is shorter than its checkpoint says; use --overwrite")
        with output.open("r+b") as f:
            f.truncate(state["bytes"])  # drop the part of the span that was interrupted
        return state
    if output.exists() and not overwrite:
        manifest = sidecar(output, "manifest")
        if manifest.exists():
            raise ExportError(
                f"{output} is a complete export (see {manifest.name}): nothing to resume; "
                "use --overwrite to export it again, or another -o file"
            )
        raise ExportError(f"{output} exists; use --overwrite to replace it, or another -o file")
    sidecar(output, "manifest").unlink(missing_ok=True)
    with output.open("w", encoding="utf-8", newline="") as stream:
        _Writer(stream, job).header()
    state = {
        "version": _CHECKPOINT_VERSION,
        "job": job.key(),
        "done_through": None,
        "bytes": output.stat().st_size,
        "rows": 0,
        "cost_sum": "0",
    }
    _write_json(checkpoint_path, state)
    return state
