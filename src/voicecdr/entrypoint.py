"""The ``voicecdr`` console script, and the one place that turns CLI errors into messages.

``pip install voicecdr`` brings only the client SDK (httpx). The command line needs
``voicecdr[cli]`` (click: ``--help``, ``--version`` and ``voicecdr export``) or
``voicecdr[server]`` (every command); a missing extra is explained in one line.

Every error is one line on stderr, ``Error: …``, naming the option, file or setting at
fault and what to do. Exit status 2: the command line or a setting is wrong (fix the
invocation); 1: the command ran and failed (app not found, database behind or down, a
record rejected); 130: interrupted. An unexpected exception is a bug: one line says so,
and ``voicecdr --debug …`` shows its traceback.
"""

from __future__ import annotations

import errno
import importlib.util
import sys
from typing import TYPE_CHECKING, NoReturn

from .errors import ConfigError, ValidationError, VoiceCdrError

if TYPE_CHECKING:
    import click

_SERVER_HINT = "pip install 'voicecdr[server]'"
USAGE, FAILURE, INTERRUPTED = 2, 1, 130
# What the server's commands import (voicecdr[server]); one missing means client-only.
_SERVER_MODULES = ("orjson", "sqlalchemy", "alembic", "pydantic_settings", "starlette", "uvicorn")
# Fields of our ValidationError whose option is not simply --field-name.
_OPTION_NAMES = {"callback_url": "--callback-url", "rate_limit": "--rate-limit"}


def main() -> NoReturn:
    try:
        import click  # noqa: F401
    except ImportError:
        _fail(
            f"the command line needs click: pip install 'voicecdr[cli]' (or {_SERVER_HINT})",
            FAILURE,
        )
    sys.exit(run(_root(), sys.argv[1:]))


def _root() -> click.Group:
    """The full command group, or with only ``voicecdr[cli]`` installed the client's."""
    # The commands import these when they run, not here: look them up without importing.
    for name in _SERVER_MODULES:
        if importlib.util.find_spec(name) is None:
            return _client_only(name)
    try:
        from .cli import main as full
    except ImportError as exc:
        if (exc.name or "").startswith("voicecdr"):
            raise  # our own bug, not a missing extra
        return _client_only(exc.name or "a server dependency")
    return full


def _client_only(missing: str) -> click.Group:
    import click

    from . import __version__
    from .cli_export import export_command

    class ClientOnly(click.Group):
        def resolve_command(
            self, ctx: click.Context, args: list[str]
        ) -> tuple[str | None, click.Command | None, list[str]]:
            if args and args[0] not in self.commands:
                raise click.ClickException(
                    f"`voicecdr {args[0]}` needs the server's dependencies ({missing} is "
                    f"missing): {_SERVER_HINT}"
                )
            return super().resolve_command(ctx, args)

    @click.group(
        cls=ClientOnly,
        # \b: click keeps the paragraph's lines as written (the command stays whole).
        epilog=f"\b\nOnly `export` is installed. The other commands need:\n  {_SERVER_HINT}",
    )
    @click.version_option(__version__, prog_name="voicecdr")
    @debug_option
    def client(debug: bool) -> None:
        """voicecdr: voice call-detail records behind NXCloud's query API."""

    client.add_command(export_command)
    return client


def debug_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--debug``: show the traceback of an unexpected error (see :func:`run`)."""
    import click

    return click.option(
        "--debug", is_flag=True, help="On an unexpected error, show its traceback."
    )(f)


def run(command: click.Command, args: list[str]) -> int:
    """Run ``command`` with ``args``; every error becomes one line and an exit status."""
    import click

    ctx: click.Context | None = None
    try:
        with command.make_context("voicecdr", args) as ctx:
            command.invoke(ctx)
        return 0
    except click.exceptions.Exit as exc:  # --help, --version, ctx.exit()
        return exc.exit_code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `voicecdr apps` (click >= 8.2)
            print(exc.format_message(), file=sys.stderr)  # the group's help
            return USAGE
        where = exc.ctx.command_path if exc.ctx is not None else "voicecdr"
        _say(f"{exc.format_message()} (see `{where} --help`)")
        return USAGE
    except click.ClickException as exc:
        _say(exc.format_message())
        return exc.exit_code
    except ValidationError as exc:
        option = _OPTION_NAMES.get(exc.field, f"--{exc.field.replace('_', '-')}")
        _say(f"{option}: {exc.message}")
        return USAGE
    except ConfigError as exc:
        _say(str(exc))
        return USAGE
    except VoiceCdrError as exc:
        _say(str(exc))
        return FAILURE
    except (KeyboardInterrupt, click.Abort):
        _say("interrupted")
        return INTERRUPTED
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader went away (`| head`): nothing to say
            sys.stderr = sys.stdout = None  # no flush at exit
            return FAILURE
        if ctx is not None and ctx.params.get("debug"):
            raise
        what = f"{exc.filename}: " if exc.filename else ""
        _say(f"{what}{exc.strerror or exc}")
        return FAILURE
    except Exception as exc:
        if ctx is not None and ctx.params.get("debug"):
            raise
        _say(
            f"unexpected {type(exc).__name__}: {exc}. This is a bug in voicecdr: please "
            "report it with the output of the same command run as `voicecdr --debug …`"
        )
        return FAILURE


def _say(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)


def _fail(message: str, status: int) -> NoReturn:
    _say(message)
    sys.exit(status)
