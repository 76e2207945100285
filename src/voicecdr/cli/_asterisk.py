"""The Asterisk cdr_csv options, one definition shared by ``cdrs import`` and ``watch``:
``--source-timezone``, ``--map``, ``--set`` and ``--extra-column``, and the
:class:`AsteriskOptions` they make (a usage error, exit status 2, before anything is read)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from ..ingest.asterisk import AsteriskOptions

F = TypeVar("F", bound=Callable[..., object])


def _timezone(_ctx: click.Context, _param: click.Parameter, name: str | None) -> str | None:
    from ..timefmt import zone

    if name is None:
        return None
    try:
        zone(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return name


def asterisk_options(timezone_help: str) -> Callable[[F], F]:
    """The four options, on a command; ``--source-timezone``'s help is the command's."""

    def decorate(command: F) -> F:
        for option in reversed(
            [
                click.option(
                    "--source-timezone",
                    callback=_timezone,
                    help=timezone_help + " [default: UTC]",
                ),
                click.option(
                    "--map",
                    "maps",
                    multiple=True,
                    metavar="FIELD=COLUMN",
                    help="Asterisk: take a canonical field from a cdr_csv column (repeatable). "
                    "[default: appkey=accountcode, messageid=userfield, phone=dst, "
                    "show_phone=src]",
                ),
                click.option(
                    "--set",
                    "sets",
                    multiple=True,
                    metavar="FIELD=VALUE",
                    help="Asterisk: give a canonical field one value for every call "
                    "(repeatable); service needs --set or --map.",
                ),
                click.option(
                    "--extra-column",
                    type=click.Choice(["uniqueid", "userfield"]),
                    help="Asterisk: the one optional column of a 17- or 20-column line "
                    "(cdr.conf loguniqueid or loguserfield alone). [default: uniqueid]",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


def options_of(
    fmt: str | None,
    timezone: str | None,
    maps: tuple[str, ...],
    sets: tuple[str, ...],
    extra_column: str | None,
    *,
    timezone_elsewhere: bool = False,
) -> AsteriskOptions | None:
    """The AsteriskOptions of ``--format asterisk`` (None for other formats, which take
    none of its options; ``timezone_elsewhere``: the command's other formats take
    ``--source-timezone``); a usage error names what is wrong."""
    from ..errors import ConfigError
    from ..ingest.asterisk import AsteriskOptions

    given = {
        "--source-timezone": timezone is not None and not timezone_elsewhere,
        "--map": bool(maps),
        "--set": bool(sets),
        "--extra-column": extra_column is not None,
    }
    if fmt != "asterisk":
        used = [name for name, on in given.items() if on]
        if used:
            raise click.UsageError(f"{', '.join(used)}: only for --format asterisk")
        return None
    try:
        options = AsteriskOptions.build(
            timezone=timezone or "UTC",
            maps=maps,
            sets=sets,
            lone_column=extra_column or "uniqueid",
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if "service" in options.missing():
        raise click.UsageError(
            "--format asterisk: cdr_csv records have no service: give it with "
            "--set service=VALUE (group_call, verification or notification) or "
            "--map service=COLUMN"
        )
    return options
