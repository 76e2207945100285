"""The entry point's one error path: every error one line on stderr with its exit status;
an unexpected exception is called a bug, its traceback shown only under --debug."""

from __future__ import annotations

import click
import pytest

from voicecdr.entrypoint import debug_option, run
from voicecdr.errors import ConfigError, NotFound, ValidationError


def group_raising(error: BaseException) -> click.Group:
    @click.group()
    @debug_option
    def root(debug: bool) -> None:
        """A root like voicecdr's."""

    @root.command()
    def go() -> None:
        raise error

    return root


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (RuntimeError("boom"), 1, "Error: unexpected RuntimeError: boom. This is a bug"),
        (ValidationError("rate_limit", "must be more than 0"), 2, "Error: --rate-limit: must be"),
        (ValidationError("time_zone", "unknown"), 2, "Error: --time-zone: unknown"),
        (ConfigError("VOICECDR_X: must be a number"), 2, "Error: VOICECDR_X: must be a number"),
        (NotFound("no app with appkey 'x'"), 1, "Error: no app with appkey 'x'"),
        (FileNotFoundError(2, "No such file or directory", "out/x.csv"), 1, "Error: out/x.csv: No"),
        (click.UsageError("say which"), 2, "Error: say which (see `voicecdr go --help`)"),
        (KeyboardInterrupt(), 130, "Error: interrupted"),
    ],
)
def test_each_error_is_one_line_with_its_status(
    capsys: pytest.CaptureFixture[str], error: BaseException, status: int, line: str
) -> None:
    assert run(group_raising(error), ["go"]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(line)


def test_debug_lets_an_unexpected_error_through_with_its_traceback() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        run(group_raising(RuntimeError("boom")), ["--debug", "go"])


def test_help_exits_zero_and_offers_debug(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(group_raising(RuntimeError()), ["--help"]) == 0
    assert "--debug" in capsys.readouterr().out
