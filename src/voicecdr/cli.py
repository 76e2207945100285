"""The ``voicecdr`` command line: thin commands over the same services the API uses.

Results are JSON when ``--json`` is given or stdout is not a terminal, so scripts can read
them; on a terminal they are short human text. Errors go to stderr with exit status 1
(2 for usage errors).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__, apps, demo, logs
from .config import Settings
from .errors import NotFound, ValidationError, VoiceCdrError
from .storage import migrate
from .storage.store import Store
from .timefmt import zone

_OPTION_NAMES = {"callback_url": "--callback-url", "rate_limit": "--rate-limit"}


class Context:
    def __init__(self, database_url: str | None, json_output: bool) -> None:
        self.database_url = database_url
        self.json_output = json_output

    def settings(self) -> Settings:
        try:
            return Settings.from_env(database_url=self.database_url)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise click.ClickException(f"configuration: {exc}") from None

    @contextmanager
    def store(self, *, current: bool = True) -> Iterator[Store]:
        store = Store(self.settings().database_url, create=not current)
        try:
            if current:
                migrate.require_current(store)
            yield store
        finally:
            store.close()

    def emit(self, data: Any, human: Callable[[Any], str]) -> None:
        if self.json_output or not sys.stdout.isatty():
            click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(human(data))


pass_ctx = click.make_pass_decorator(Context)


def _json_flag(f: Callable[..., Any]) -> Callable[..., Any]:
    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(Context).json_output = True

    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        help="Print the result as JSON (the default when stdout is not a terminal).",
    )(f)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            option = _OPTION_NAMES.get(exc.field, f"--{exc.field.replace('_', '-')}")
            raise click.ClickException(f"{option}: {exc.message}") from None
        except VoiceCdrError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="voicecdr")
@click.option(
    "--database-url",
    metavar="URL",
    help="sqlite:///FILE or postgresql://…  [env VOICECDR_DATABASE_URL; default sqlite:///voicecdr.db]",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """voicecdr: voice call-detail records behind NXCloud's query API."""
    ctx.obj = Context(database_url, json_output=False)


# -- serve -------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes; rate limits are shared between them.",
)
@pass_ctx
def serve(obj: Context, host: str, port: int, workers: int) -> None:
    """Run the HTTP API (production ASGI server)."""
    import uvicorn

    settings = obj.settings()
    logs.configure(settings.log_level)
    with obj.store():
        pass  # fail here, clearly, if the database is unreachable or behind
    # Worker processes read their settings from the environment, like the parent did.
    os.environ["VOICECDR_DATABASE_URL"] = settings.database_url
    metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # prometheus_client's convention for aggregating metrics over worker processes.
        metrics_dir = tempfile.mkdtemp(prefix="voicecdr-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "voicecdr.api:factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# -- db ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@_json_flag
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Create or migrate the schema to this version's head."""
    with obj.store(current=False) as store:
        before, after = migrate.upgrade(store)
    obj.emit({"from": before, "to": after}, lambda d: f"schema {d['from'] or 'empty'} -> {d['to']}")


# -- apps --------------------------------------------------------------------------------


@main.group("apps")
def apps_group() -> None:
    """Customer apps (tenants) and their credentials."""


def _human_credentials(d: dict[str, Any]) -> str:
    return "\n".join(f"{k:15} {v}" for k, v in d.items()) + (
        "\nKeep the secretkey now: only its hash is stored."
    )


@apps_group.command("create")
@click.option("--name", required=True)
@click.option("--appkey", help="Default: 32 random hex characters.")
@click.option("--secretkey", help="Default: 43 random URL-safe characters.")
@click.option("--timezone", help="IANA name [default: VOICECDR_TIMEZONE or Asia/Shanghai].")
@click.option("--language", type=click.Choice(["en", "zh"]), help="[default: en]")
@click.option("--callback-url", help="Where receipts are pushed.")
@click.option("--rate-limit", type=float, help="Query requests per second [default: 1].")
@_json_flag
@pass_ctx
def apps_create(obj: Context, /, **options: Any) -> None:
    """Create an app and print its appkey, secretkey and signing_secret."""
    with obj.store() as store:
        issued = apps.create_app(store, default_timezone=obj.settings().timezone, **options)
    obj.emit(issued.to_dict(), _human_credentials)


@apps_group.command("list")
@_json_flag
@pass_ctx
def apps_list(obj: Context) -> None:
    """List apps (never their secrets)."""
    with obj.store() as store:
        rows = [apps.public_view(a) for a in store.list_apps()]
    obj.emit(
        rows,
        lambda rs: (
            "\n".join(
                f"{r['appkey']:34} {r['name']:24} {r['timezone']:18} {r['language']} "
                f"{r['rate_limit']:g}/s {r['callback_url'] or '-'}"
                for r in rs
            )
            or "no apps"
        ),
    )


@apps_group.command("update")
@click.argument("appkey")
@click.option("--name")
@click.option("--timezone")
@click.option("--language", type=click.Choice(["en", "zh"]))
@click.option("--callback-url", help="An empty string removes the callback.")
@click.option("--rate-limit", type=float)
@_json_flag
@pass_ctx
def apps_update(obj: Context, /, appkey: str, **changes: Any) -> None:
    """Change an app's settings."""
    with obj.store() as store:
        app = apps.update_app(store, appkey, **changes)
    obj.emit(apps.public_view(app), lambda d: "\n".join(f"{k:13} {v}" for k, v in d.items()))


@apps_group.command("rotate-secret")
@click.argument("appkey")
@click.option("--secretkey", help="Use this secretkey instead of a random one.")
@click.option(
    "--signing-secret", "signing", is_flag=True, help="Also issue a new receipt signing secret."
)
@_json_flag
@pass_ctx
def apps_rotate_secret(obj: Context, appkey: str, secretkey: str | None, signing: bool) -> None:
    """Issue a new secretkey; the old one stops working at once."""
    with obj.store() as store:
        issued = apps.rotate_secret(store, appkey, secretkey=secretkey, signing=signing)
    obj.emit(issued.to_dict(), _human_credentials)


# -- cdrs --------------------------------------------------------------------------------


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
@_json_flag
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
    from .ingest.importer import import_paths

    with obj.store() as store:
        result = import_paths(
            store,
            paths,
            fmt=fmt,
            rejects_path=rejects_path,
            progress=sys.stderr.isatty(),
            workers=workers,
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


# -- demo --------------------------------------------------------------------------------


@main.command("demo")
@click.option("--count", default=3000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--days", default=3.0, show_default=True, type=click.FloatRange(0.01, 30))
@click.option(
    "--seed",
    default=7,
    show_default=True,
    help="Random seed; with the current time it decides the calls, so a rerun adds new ones.",
)
@_json_flag
@pass_ctx
def demo_command(obj: Context, /, count: int, days: float, seed: int) -> None:
    """Load a demo app (appkey `demo`, secretkey `demo-secret`) with realistic CDRs."""
    from .ingest.core import Ingestor, Item

    settings = obj.settings()
    now = int(time.time())
    with obj.store(current=False) as store:
        migrate.upgrade(store)
        try:
            apps.rotate_secret(store, demo.DEMO_APPKEY, secretkey=demo.DEMO_SECRETKEY)
        except NotFound:
            apps.create_app(
                store,
                name="Demo",
                appkey=demo.DEMO_APPKEY,
                secretkey=demo.DEMO_SECRETKEY,
                default_timezone=settings.timezone,
                rate_limit=5,
            )
        app = store.get_app(demo.DEMO_APPKEY)
        assert app is not None
        records = demo.generate([app.appkey], count, now=now, days=days, seed=seed)
        summary = Ingestor(store).ingest(Item(i, r) for i, r in enumerate(records))
    tz = app.timezone
    local_now = datetime.fromtimestamp(now, zone(tz))
    start = (local_now - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S")
    end = local_now.strftime("%Y-%m-%d %H:%M:%S")
    curl = " ".join(
        [
            "curl -s -X POST http://127.0.0.1:8000/api/voiceSms/getVoiceCdr",
            f"--data-urlencode appkey={app.appkey}",
            f"--data-urlencode secretkey={demo.DEMO_SECRETKEY}",
            "--data-urlencode voiceType=0",
            f"--data-urlencode {shlex.quote('start_time=' + start)}",
            f"--data-urlencode {shlex.quote('end_time=' + end)}",
            "--data-urlencode page_size=5 --data-urlencode page=1",
        ]
    )
    data = {
        "appkey": app.appkey,
        "secretkey": demo.DEMO_SECRETKEY,
        "timezone": tz,
        **summary.to_dict(),
        "try": curl,
    }
    obj.emit(
        data,
        lambda d: (
            f"demo app: appkey={d['appkey']} secretkey={d['secretkey']} timezone={d['timezone']}\n"
            f"loaded {d['accepted']} CDRs over the last {days:g} days\n"
            f"start the server with `voicecdr serve`, then try:\n  {d['try']}"
        ),
    )
