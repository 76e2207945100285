"""The client's public surface: curated, documented, and free of server imports."""

from __future__ import annotations

import subprocess
import sys

import voicecdr.client as client
from voicecdr.client import _exceptions

SERVER_MODULES = ("orjson", "pydantic", "sqlalchemy", "starlette", "alembic", "psycopg")


def test_all_is_the_public_surface_and_every_name_exists() -> None:
    public = {name for name in dir(client) if not name.startswith("_")}
    assert sorted(client.__all__) == sorted(set(client.__all__))
    assert set(client.__all__) <= public
    for name in client.__all__:
        value = getattr(client, name)
        if isinstance(value, type):
            assert value.__module__ == "voicecdr.client", name
            assert value.__doc__, f"{name} has no docstring"


def test_every_exception_is_drawn_in_the_module_docstring() -> None:
    doc = _exceptions.__doc__ or ""
    exceptions = [
        v for v in vars(client).values() if isinstance(v, type) and issubclass(v, Exception)
    ]
    assert len(exceptions) >= 10
    for cls in exceptions:
        assert issubclass(cls, client.ClientError)
        assert cls.__name__ in doc, cls.__name__


def test_importing_the_client_imports_nothing_from_the_server_side() -> None:
    code = (
        "import sys, voicecdr.client, voicecdr.client._export; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_MODULES!r} "
        "or m.startswith('voicecdr.') and not m.startswith('voicecdr.client')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
