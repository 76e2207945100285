"""The ``voicecdr`` console script: explains a missing extra instead of a traceback.

``pip install voicecdr`` brings only the client SDK (httpx). The command line needs
``voicecdr[cli]`` (click: enough for ``voicecdr export``) or ``voicecdr[server]``
(everything).
"""

from __future__ import annotations

import sys

_SERVER_HINT = "install voicecdr[server] (pip install 'voicecdr[server]')"


def main() -> None:
    try:
        import click  # noqa: F401
    except ImportError:
        sys.exit(f"voicecdr: the command line needs click: {_SERVER_HINT}")
    try:
        from .cli import main as full
    except ImportError as exc:
        if (exc.name or "").startswith("voicecdr"):
            raise  # our own bug, not a missing extra
        if sys.argv[1:2] == ["export"]:
            from .cli_export import export_command

            export_command.main(args=sys.argv[2:], prog_name="voicecdr export")
            return
        sys.exit(
            f"voicecdr: this command needs the server's dependencies "
            f"({exc.name} is missing): {_SERVER_HINT}"
        )
    full()
