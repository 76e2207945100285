"""The import's progress bar appears on a terminal, and only there."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from tests.acceptance.conftest import Cli
from tests.support.data import canonical


def test_progress_bar_on_a_terminal_only(fresh_cli: Cli, tmp_path: Path) -> None:
    assert fresh_cli("db", "upgrade").code == 0
    assert fresh_cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
    source = tmp_path / "cdrs.jsonl"
    source.write_text("".join(json.dumps(canonical(f"t{i}")) + "\n" for i in range(50)))
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            fresh_cli.command("cdrs", "import", str(source)),
            cwd=fresh_cli.cwd,
            env=fresh_cli.env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"importing" in drawn
    assert json.loads(done.stdout)["accepted"] == 50  # stdout (piped) is the JSON alone
