"""``./scripts/test`` lints the project's own folders, not files a reader creates in the checkout
(docs/receipts.md has them write receiver.py there), and stays strict on ours."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")
# What a reader's own receiver does, and our rules refuse in project code (S104).
BINDS_EVERYWHERE = 'import socket\n\nsocket.socket().bind(("0.0.0.0", 8080))\n'


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def checkout(tmp_path: Path) -> Path:
    """The project's configuration, one clean file in each of its folders, and a reader's file."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", root)
    for folder in ("src/voicecdr", "tests", "bench"):
        (root / folder).mkdir(parents=True)
        (root / folder / "ok.py").write_text("X = 1\n")
    (root / "receiver.py").write_text(BINDS_EVERYWHERE)
    (root / "voicecdr-try").mkdir()
    (root / "voicecdr-try" / "receiver.py").write_text(BINDS_EVERYWHERE)
    return root


def test_a_readers_file_in_the_checkout_is_not_linted(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    listed = ruff("check", "--show-files", cwd=root)
    files = sorted(Path(line).relative_to(root).as_posix() for line in listed.stdout.split())
    assert [f for f in files if f.endswith(".py")] == [
        "bench/ok.py",
        "src/voicecdr/ok.py",
        "tests/ok.py",
    ]
    assert ruff("check", cwd=root).returncode == 0
    assert ruff("format", "--check", cwd=root).returncode == 0


def test_the_projects_own_folders_stay_strict(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "src" / "voicecdr" / "serve.py").write_text(BINDS_EVERYWHERE)
    (root / "bench" / "messy.py").write_text("X=1\n")
    checked = ruff("check", cwd=root)
    assert checked.returncode == 1
    assert "S104" in checked.stdout
    assert ruff("format", "--check", cwd=root).returncode == 1
