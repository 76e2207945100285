"""The command line's numbers: ASCII digits only and finite, for every numeric option."""

from __future__ import annotations

import click
import pytest

from voicecdr.cli import main
from voicecdr.cli_export import export_command
from voicecdr.cli_numbers import real, whole


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += _commands(sub, f"{path} {name}")
    return found


def test_every_numeric_parameter_takes_ascii_digits_only() -> None:
    # type=int, a FloatRange or an int default (click infers INT) would take "\uff15".
    loose = [
        f"{path} {param.name}"
        for path, command in _commands(main, "voicecdr")
        for param in command.params
        if isinstance(param.type, click.types._NumberParamTypeBase)
        and type(param.type).__module__ != "voicecdr.cli_numbers"
    ]
    assert loose == []


def test_the_export_command_is_walked_too() -> None:
    assert ("voicecdr export", export_command) in _commands(main, "voicecdr")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("\uff15", "'\uff15' is not a whole number written with ASCII digits 0-9"),
        ("\u0663", "'\u0663' is not a whole number written with ASCII digits 0-9"),
        ("\N{SUPERSCRIPT TWO}", "is not a whole number written with ASCII digits 0-9"),
        ("1_000", "'1_000' is not a whole number"),
        ("1.5", "'1.5' is not a whole number"),
        ("nan", "'nan' is not a finite number"),
    ],
)
def test_a_whole_number_refuses(text: str, says: str) -> None:
    with pytest.raises(click.BadParameter, match=says):
        whole().convert(text, None, None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("\uff15", "'\uff15' is not a number written with ASCII digits 0-9"),
        ("\u0661.5", "is not a number written with ASCII digits 0-9"),
        ("nan", "'nan' is not a finite number"),
        ("-Infinity", "'-Infinity' is not a finite number"),
        (" inf ", "is not a finite number"),
        ("1e999", "'1e999' is too large"),
        ("0x10", "'0x10' is not a number"),
    ],
)
def test_a_real_number_refuses(text: str, says: str) -> None:
    with pytest.raises(click.BadParameter, match=says):
        real().convert(text, None, None)


@pytest.mark.parametrize(("text", "value"), [("5", 5), (" 7 ", 7), ("+3", 3), ("-2", -2)])
def test_a_whole_number_reads_ascii_digits(text: str, value: int) -> None:
    assert whole().convert(text, None, None) == value


@pytest.mark.parametrize(
    ("text", "value"), [("5", 5.0), ("0.5", 0.5), (".5", 0.5), ("2e6", 2e6), ("-1.5E-1", -0.15)]
)
def test_a_real_number_reads_ascii_digits(text: str, value: float) -> None:
    assert real().convert(text, None, None) == value


def test_ranges_still_apply() -> None:
    with pytest.raises(click.BadParameter, match="not in the range"):
        whole(1, 3).convert("4", None, None)
    with pytest.raises(click.BadParameter, match="not in the range"):
        real(0.01, 30).convert("31", None, None)
    assert real(0.01, 30).convert(3.0, None, None) == 3.0  # a default, already a number
