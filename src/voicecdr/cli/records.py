"""``cdrs import``: CDRs from files, with every rejected record and its reasons kept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._base import Context, json_flag, main, pass_ctx


@main.group("cdrs")
def cdrs_group() -> None:
    """Call detail records."""


@cdrs_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv", "freeswitch"]),
    default="auto",
    show_default=True,
    help="auto: directories hold FreeSWITCH CDRs; files go by suffix (.jsonl/.ndjson, "
    ".csv, .json).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected records go (JSONL: file, line, call_id, errors). "
    "[default: voicecdr-rejects-<time>.jsonl in the working directory, only if any]",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    help="Processes that parse and validate JSONL beside the one that stores (0: none). "
    "[default: for files of 16 MiB or more, CPU cores - 2, at most 4]",
)
@json_flag
@pass_ctx
def cdrs_import(
    obj: Context,
    paths: tuple[Path, ...],
    fmt: str,
    rejects_path: Path | None,
    workers: int | None,
) -> None:
    """Import CDRs from JSONL, CSV or FreeSWITCH JSON CDR files and directories.

    Valid records are stored even when others are rejected; a call_id already stored with
    the same content counts as a duplicate. Rejected records, with their file, line and
    reasons, go to the rejects file. Exit status 1 when any record was rejected.
    """
    from ..ingest.importer import import_paths
    from ..ingest.timebounds import TimeLimits

    with obj.store(bulk=True) as store:
        result = import_paths(
            store,
            paths,
            fmt=fmt,
            rejects_path=rejects_path,
            progress=sys.stderr.isatty(),
            workers=workers,
            limits=TimeLimits.of(obj.settings()),
        )
    obj.emit(result.to_dict(), _human_import)
    if result.summary.rejected_total:
        sys.exit(1)


def _human_import(d: dict[str, Any]) -> str:
    lines = [
        f"accepted {d['accepted']}, duplicates {d['duplicates']}, rejected {d['rejected_total']}"
    ]
    lines += [
        f"  {r.get('file', '-')}:{r.get('line', '-')}: {'; '.join(r['errors'])}"
        for r in d["rejected"][:20]
    ]
    if d["rejects_file"]:
        lines.append(f"rejected records and reasons: {d['rejects_file']}")
    return "\n".join(lines)
