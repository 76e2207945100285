"""The command line starts without loading what only some commands use."""

from __future__ import annotations

import subprocess
import sys

# The database, settings, HTTP server and client stacks: each command imports its own.
HEAVY = ("sqlalchemy", "alembic", "pydantic", "pydantic_settings", "starlette", "uvicorn")
HEAVY += ("httpx", "psycopg", "phonenumbers", "prometheus_client")


def test_loading_every_command_imports_none_of_the_heavy_libraries() -> None:
    code = (
        "import sys, voicecdr.cli; "
        "assert {'apps', 'cdrs', 'db', 'serve', 'stats'} <= set(voicecdr.cli.main.commands); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
