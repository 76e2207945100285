"""The import's progress bar appears on a terminal, and only there."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Cli
from tests.support.data import canonical


def test_progress_bar_on_a_terminal_only(fresh_cli: Cli, tmp_path: Path) -> None:
    assert fresh_cli("db", "upgrade").code == 0
    assert fresh_cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
    source = tmp_path / "cdrs.jsonl"
    source.write_text("".join(json.dumps(canonical(f"t{i}")) + "\n" for i in range(50)))
    done = fresh_cli.on_terminal("cdrs", "import", str(source), stream="stderr")
    assert done.code == 0
    assert "importing" in done.err
    assert done.json()["accepted"] == 50  # stdout (piped) is the JSON alone
