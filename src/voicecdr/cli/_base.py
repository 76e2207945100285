"""What every command shares: the context (settings, database, output), the ``--json`` flag,
the root group and its error handling, and the lookups several groups make.

The command modules import the database, settings and models inside each command, not at
the top: every ``voicecdr`` start (``--help`` included) would otherwise pay for them all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
import orjson

from .. import __version__
from ..entrypoint import debug_option, run
from ..errors import NotFound
from ..timefmt import parse_cli_time, zone

if TYPE_CHECKING:
    from ..config import Settings
    from ..models import App
    from ..storage import Database


class Context:
    def __init__(self, database_url: str | None, json_output: bool) -> None:
        self.database_url = database_url
        self.json_output = json_output
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """The settings, read from the environment once per command."""
        if self._settings is None:
            from ..config import Settings

            self._settings = Settings.from_env(database_url=self.database_url)
        return self._settings

    @contextmanager
    def database(self, *, current: bool = True, bulk: bool = False) -> Iterator[Database]:
        from ..storage import Database, require_current

        db = Database(self.settings().database_url, create=not current, bulk=bulk)
        try:
            if current:
                require_current(db)
            yield db
        finally:
            db.close()

    def emit(self, data: Any, human: Callable[[Any], str]) -> None:
        if self.json_output or not sys.stdout.isatty():
            click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(human(data))


pass_ctx = click.make_pass_decorator(Context)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]], columns: dict[str, str], empty: str) -> str:
    """Rows as aligned columns under a header (``columns``: key -> heading), for a
    terminal; ``empty`` when there are none."""
    if not rows:
        return empty
    cells = [list(columns.values())]
    cells += [[_cell(r[k]) for k in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def json_flag(f: Callable[..., Any]) -> Callable[..., Any]:
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
    # ``export`` is loaded when asked for: it brings httpx (and whatever httpx brings),
    # which every other command would otherwise import at start-up for nothing.
    _LAZY = "export"

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted([*names, self._LAZY]) if ctx.parent is None else names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if ctx.parent is None and cmd_name == self._LAZY:
            from ..cli_export import export_command

            return export_command
        return super().get_command(ctx, cmd_name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # Called as a script (`voicecdr.cli.main()`), errors take the entry point's path.
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        sys.exit(run(self, list(sys.argv[1:] if args is None else args)))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="voicecdr")
@debug_option
@click.option(
    "--database-url",
    metavar="URL",
    help="sqlite:///FILE or postgresql://…  [env VOICECDR_DATABASE_URL; default sqlite:///voicecdr.db]",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, debug: bool) -> None:
    """voicecdr: voice call-detail records behind NXCloud's query API."""
    ctx.obj = Context(database_url, json_output=False)


def find_app(db: Database, appkey: str) -> App:
    """The app with ``appkey``, or NotFound (exit status 1 with the message)."""
    from ..storage import AppStore

    app = AppStore(db).get(appkey)
    if app is None:
        raise NotFound(f"no app with appkey {appkey!r}")
    return app


def period(app: App, start: str, end: str) -> tuple[int, int]:
    """``--from`` and ``--to`` as epoch seconds, read in the app's timezone."""
    tz = zone(app.timezone)
    begin = cli_time(start, tz, "--from")
    finish = cli_time(end, tz, "--to", latest=True)
    if begin > finish:
        raise click.UsageError(f"--from {start!r} is after --to {end!r}")
    return begin, finish


def cli_time(text: str, tz: ZoneInfo, option: str, *, latest: bool = False) -> int:
    """A time option's value as epoch seconds; a usage error naming the option and value."""
    try:
        return parse_cli_time(text, tz, latest=latest)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
