"""The ``voicecdr`` command line: thin commands over the same services the API uses.

Results are JSON when ``--json`` is given or stdout is not a terminal, so scripts can read
them; on a terminal they are short human text. Errors go to stderr with exit status 1
(2 for usage errors).

The root group and what the commands share are in ``_base``; each other module adds its
commands to the group when imported, here. ``export`` is the client's command and lives
in ``voicecdr.cli_export``, so that it runs without the server's dependencies.
"""

from __future__ import annotations

from . import billing, delivery, records, service, spool, stats, tenants  # noqa: F401
from ._base import main

__all__ = ["main"]
