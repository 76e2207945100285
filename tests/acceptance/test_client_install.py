"""``pip install voicecdr`` (no extras) gives a working client SDK with httpx alone."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

from voicecdr import __version__

ROOT = Path(__file__).resolve().parents[2]
SWAGGER_UI_FILES = (
    "import importlib.resources as r; "
    "d = r.files('voicecdr') / 'api' / 'static' / 'swagger-ui'; "
    "print(*sorted(p.name for p in d.iterdir()))"
)
SERVER_SIDE = ("starlette", "sqlalchemy", "pydantic", "click", "orjson", "alembic", "psycopg")


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def project_copy(tmp_path: Path) -> Path:
    """What a source distribution holds, so the build never writes into the checkout
    (nor picks up a stale build/ directory there)."""
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


def test_the_client_installs_and_imports_with_httpx_alone(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    # A real install of the project from its metadata: whatever the core dependencies
    # pull in is all the client gets. pip's local cache keeps this to seconds.
    installed = run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        project_copy(tmp_path),
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    # The package carries the docs page's Swagger UI, so /docs needs no other host.
    shipped = run(python, "-c", SWAGGER_UI_FILES, cwd=tmp_path)
    for name in ("LICENSE", "NOTICE", "swagger-ui-bundle.js", "swagger-ui.css"):
        assert name in shipped.stdout.split(), shipped
    listed = run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path).stdout.lower()
    for package in SERVER_SIDE:
        assert f"\n{package}==" not in f"\n{listed}", package

    code = (
        "import sys, voicecdr.client as c; "
        "from voicecdr.client._export import export; "
        "assert c.Client('k', 's').base_url == 'http://api2.nxcloud.com'; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_SIDE!r}))"
    )
    imported = run(python, "-c", code, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"

    # The console script explains the missing extra in one line instead of a traceback.
    script = run(tmp_path / "venv" / "bin" / "voicecdr", "serve", cwd=tmp_path)
    assert script.returncode == 1
    assert script.stderr.strip().splitlines() == [
        "Error: the command line needs click: pip install 'voicecdr[cli]' "
        "(or pip install 'voicecdr[server]')"
    ]

    # With the small [cli] extra (click): --help, --version and `voicecdr export` work,
    # and each server command says in one line what to install.
    assert run(python, "-m", "pip", "install", "-q", "click", cwd=tmp_path).returncode == 0
    voicecdr = tmp_path / "venv" / "bin" / "voicecdr"
    helped = run(voicecdr, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "export" in helped.stdout
    assert "pip install 'voicecdr[server]'" in helped.stdout
    version = run(voicecdr, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"voicecdr, version {__version__}")
    export_help = run(voicecdr, "export", "--help", cwd=tmp_path)
    assert export_help.returncode == 0, export_help.stderr
    assert "VOICECDR_APPKEY" in export_help.stdout
    for command in ("serve", "db", "apps"):
        refused = run(voicecdr, command, "--help", cwd=tmp_path)
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith(f"Error: `voicecdr {command}` needs the server's dependencies")
        assert lines[0].endswith("pip install 'voicecdr[server]'")
