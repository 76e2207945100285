"""Every ```shell block of README.md and docs/ runs, in order, as a reader would run it.

Each page runs in a scratch directory of its own with the real ``voicecdr`` command: README.md
as a fresh checkout (``.venv`` is there, but not on PATH until the page says how), the pages
under docs/ with ``voicecdr`` installed. ``voicecdr serve`` and ``voicecdr worker`` run in the
background, as in the reader's second terminal, on ports the test picks instead of the pages'
8000 and 8080. HTML comments before a block say what cannot run here, and why
(``tests/support/docblocks.py`` lists them); the pages show them to a reviewer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import free_port
from tests.support.docblocks import Block, blocks, output_matches

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
VENV_BIN = Path(sys.executable).parent
# The pages run side by side, and all of them together stay well under two minutes.
TIMEOUT = 90

PRELUDE = r"""
set -euo pipefail
doc_serve() {  # the page's `voicecdr serve …`, in the background on the test's address
    local command="$1" args=() skip=""
    shift
    for arg in "$@"; do
        if [ -n "$skip" ]; then skip=""; continue; fi
        case "$arg" in --host|--port) skip=1 ;; --host=*|--port=*) ;; *) args+=("$arg") ;; esac
    done
    if [ -n "${DOC_SERVER:-}" ]; then kill "$DOC_SERVER"; wait "$DOC_SERVER" || true; fi
    "$command" serve --host 127.0.0.1 --port "$DOC_PORT" ${args[@]+"${args[@]}"} \
        >>"$DOC_LOGS/serve.log" 2>&1 &
    DOC_SERVER=$!
    for _ in $(seq 300); do
        if curl -sf "http://127.0.0.1:$DOC_PORT/healthz" >/dev/null; then return 0; fi
        kill -0 "$DOC_SERVER" 2>/dev/null || break
        sleep 0.1
    done
    echo "voicecdr serve did not start:" >&2; cat "$DOC_LOGS/serve.log" >&2; return 1
}
doc_background() { "$@" >>"$DOC_LOGS/background.log" 2>&1 & }
"""

_SERVE = re.compile(r"^(\S*voicecdr) serve\b", re.M)
_WORKER = re.compile(r"^(\S*voicecdr worker\b)", re.M)
# An answer that reports a failure, though curl exits 0: NXCloud's envelope, or a problem.
_FAILED_ANSWER = re.compile(r'"code":\s*"0"|"status":\s*[45]\d\d')


def _ports(text: str, ports: dict[int, int]) -> str:
    for page_port, port in ports.items():
        text = text.replace(f"127.0.0.1:{page_port}", f"127.0.0.1:{port}")
        text = text.replace(f"PORT={page_port}", f"PORT={port}")
    return text


def shell_text(text: str, ports: dict[int, int]) -> str:
    """A page's commands as the test runs them: its own ports, servers in the background."""
    text = _SERVE.sub(r"doc_serve \1", _ports(text, ports))
    return _WORKER.sub(r"doc_background \1", text)


def script_for(page: list[Block], logs: Path, ports: dict[int, int]) -> tuple[str, list[Block]]:
    """The bash script that runs a page, and the shell blocks it runs, in order."""
    parts = [PRELUDE]
    ran: list[Block] = []
    for block in page:
        if "file" in block.directives:
            name = shlex.quote(block.directives["file"])
            text = _ports(block.text, ports)
            parts.append(f"cat > {name} <<'DOC_FILE_END'\n{text}DOC_FILE_END\n")
        if block.lang != "shell" or "not run" in block.directives:
            continue
        # A directive is one line: "; " separates its commands.
        instead = block.directives.get("run instead")
        commands = block.text if instead is None else instead.replace("; ", "\n")
        first = block.directives.get("run first", "").replace("; ", "\n")
        n = len(ran)
        ran.append(block)
        parts.append(
            f"printf '%s\\n' {shlex.quote(block.where)} > {logs}/current\n"
            f"{{\n{shell_text(first, ports)}\n{shell_text(commands, ports)}\n}}"
            f" > {logs}/{n}.out 2> {logs}/{n}.err\n"
        )
    return "".join(parts), ran


def environment(page: Path, scratch: Path, logs: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICECDR_", "VIRTUAL_ENV"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    if page.name != "README.md":  # the pages under docs/ start from an installed voicecdr
        path.insert(0, str(VENV_BIN))
    env.update(PATH=os.pathsep.join(path), DOC_LOGS=str(logs), DOC_PORT=str(port))
    return env


@dataclass
class Reading:
    """One page's commands, running in the background in a scratch directory."""

    page: Path
    logs: Path
    blocks: list[Block]
    ran: list[Block]
    process: subprocess.Popen[bytes]
    deadline: float

    @classmethod
    def start(cls, page: Path, where: Path, root: Path = ROOT) -> Reading:
        scratch, logs = where / "reader", where / "logs"
        scratch.mkdir(parents=True)
        logs.mkdir()
        if page.name == "README.md":  # a checkout where ./scripts/demo made .venv (this one)
            (scratch / ".venv").symlink_to(VENV_BIN.parent)
        page_blocks = blocks(page, root)
        ports = {8000: free_port(), 8080: free_port()}
        script, ran = script_for(page_blocks, logs, ports)
        (logs / "script.sh").write_text(script)
        with (logs / "script.log").open("wb") as log:
            process = subprocess.Popen(
                ["bash", str(logs / "script.sh")],
                cwd=scratch,
                env=environment(page, scratch, logs, ports[8000]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(page, logs, page_blocks, ran, process, time.monotonic() + TIMEOUT)

    def finish(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=max(timeout, 0))
        finally:
            # The servers and receivers the page started, all in the group the script leads.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()

    def shown(self, n: int) -> str:
        block, logs = self.ran[n], self.logs
        out, err = (logs / f"{n}.out", logs / f"{n}.err")
        return (
            f"{block.where}:\n{block.text}\n--- stdout:\n"
            f"{out.read_text() if out.exists() else ''}\n--- stderr:\n"
            f"{err.read_text() if err.exists() else ''}{(logs / 'script.log').read_text()}"
        )

    def check(self) -> None:
        status = self.finish(self.deadline - time.monotonic())
        if status != 0:
            current = (self.logs / "current").read_text().strip()
            failed = next(n for n, b in enumerate(self.ran) if b.where == current)
            pytest.fail(f"exit status {status} in {self.shown(failed)}")
        last: int | None = None
        for block in self.blocks:
            if block in self.ran:
                last = self.ran.index(block)
                output = (self.logs / f"{last}.out").read_text()
                if _FAILED_ANSWER.search(output):
                    pytest.fail(f"a failure answered in {self.shown(last)}")
            elif "output" in block.directives:
                assert last is not None, f"{block.where}: no command before this output"
                actual = (self.logs / f"{last}.out").read_text()
                if not output_matches(block, actual):
                    pytest.fail(f"{block.where} shows:\n{block.text}\nbut {self.shown(last)}")


RUN = [p for p in PAGES if any(b.lang == "shell" for b in blocks(p, ROOT))]


@pytest.fixture(scope="module")
def readings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, Reading]]:
    """The selected pages at once, as separate readers: they wait mostly on their servers."""
    selected = {
        item.callspec.params["page"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and hasattr(item, "callspec")
        and "page" in item.callspec.params
    }
    started = {p: Reading.start(p, tmp_path_factory.mktemp(p.stem)) for p in RUN if p in selected}
    try:
        yield started
    finally:
        for reading in started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                reading.finish(0)


@pytest.mark.parametrize("page", RUN, ids=[p.relative_to(ROOT).as_posix() for p in RUN])
def test_the_pages_commands_run(page: Path, readings: dict[Path, Reading]) -> None:
    if page.name == "README.md" and sys.prefix == sys.base_prefix:
        pytest.skip("README.md starts from the checkout's .venv: run the tests in a virtualenv")
    readings[page].check()


def test_every_block_left_out_says_why() -> None:
    left_out = [
        b for p in PAGES for b in blocks(p, ROOT) if b.lang == "shell" and "not run" in b.directives
    ]
    for block in left_out:
        assert len(block.directives["not run"]) > 10, block.where
    # The exceptions stay few: each one is a command nothing checks.
    assert len(left_out) <= 10, [b.where for b in left_out]


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("true\nfalse\ntrue\n", r"exit status 1 in page\.md:3"),
        ('echo \'{"code":"0","error":"auth_failed"}\'\n', r"page\.md:3"),
        ("echo '{\"status\": 401}'\n", r"page\.md:3"),
    ],
)
def test_a_command_that_fails_fails_its_page(tmp_path: Path, commands: str, message: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# A page\n\n```shell\n{commands}```\n")
    reading = Reading.start(page, tmp_path / "run", root=tmp_path)
    with pytest.raises(pytest.fail.Exception, match=message):
        reading.check()


def test_shown_output_must_match(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    shell = "```shell\necho '{\"accepted\": 1}'\n```\n"
    page.write_text(f'{shell}\n<!-- output -->\n```json\n{{"accepted": 2}}\n```\n')
    with pytest.raises(pytest.fail.Exception, match=r"page\.md:6 shows"):
        Reading.start(page, tmp_path / "run", root=tmp_path).check()
