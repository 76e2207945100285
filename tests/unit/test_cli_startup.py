"""The command line starts without loading what only some commands use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from voicecdr import apps
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, Database, RatingStore

# The database, settings, HTTP server and client stacks: each command imports its own.
HEAVY = ("sqlalchemy", "alembic", "pydantic", "pydantic_settings", "starlette", "uvicorn")
HEAVY += ("httpx", "psycopg", "phonenumbers", "prometheus_client")

# What a database command on SQLite has no use for: PostgreSQL's dialect and driver,
# Alembic (the schema check reads the version itself), the server, console and client.
NOT_ON_SQLITE = ("sqlalchemy.dialects.postgresql", "psycopg", "alembic", "starlette")
NOT_ON_SQLITE += ("uvicorn", "httpx", "phonenumbers", "prometheus_client", "jinja2")
NOT_ON_SQLITE += ("voicecdr.api", "voicecdr.console", "voicecdr.client._client")


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


@pytest.mark.parametrize(
    "args",
    [
        ["apps", "list"],
        ["rates", "show", "shop"],
        ["cdrs", "list", "shop", "--from", "2026-01-01 00:00:00", "--to", "2026-01-02 00:00:00"],
        ["rate"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_database_command_on_sqlite_loads_none_of_what_it_does_not_use(
    sqlite_url: str, args: list[str]
) -> None:
    db = Database(sqlite_url)
    app = apps.create_app(AppStore(db), name="Shop", appkey="shop", default_timezone="UTC").app
    plan = parse_plan_csv("service,prefix,cycle,unit_price,basic_price\n*,,60,0.01,0\n")
    RatingStore(db).import_plan(app.id, plan, source="plan.csv", now=0)
    db.close()
    # The command runs as `voicecdr` runs it; on its way out it lists the modules it loaded.
    code = (
        "import atexit, sys; "
        "atexit.register(lambda: print(sorted(m for m in sys.modules "
        f"if m.startswith({NOT_ON_SQLITE!r})), file=sys.stderr)); "
        f"sys.argv = ['voicecdr', *{args!r}]; "
        "from voicecdr.entrypoint import main; main()"
    )
    env = {**os.environ, "VOICECDR_DATABASE_URL": sqlite_url}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
