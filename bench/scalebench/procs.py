"""Peak memory of running processes, from Linux's /proc (VmHWM: the resident set's
high-water mark since the process started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def serve_workers(pid: int) -> dict[int, float]:
    """Peak RSS (MB) of each process serving requests under ``pid``: the process itself
    when it has no worker children (``--workers 1``), else its children, leaving out
    multiprocessing's helper processes."""
    workers = [
        child
        for child in children(pid)
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    return {worker: peak_rss_mb(worker) for worker in workers or [pid]}


# Runs argv[2:] and writes its peak RSS (KiB, from wait4) to the file argv[1]. The measured
# command is started from this small process, not from the harness: Linux carries the
# forking process's high-water mark into ru_maxrss across exec, so a command forked straight
# from the harness (hundreds of MB) would report the harness's size, not its own.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(command: list[str], report: Path, **popen: Any) -> tuple[int, float]:
    """Run ``command`` to its end: its exit status and its own peak RSS in MB. ``report``
    is a scratch file for the figure."""
    launcher = [sys.executable, "-c", _LAUNCHER, str(report), *command]
    code = subprocess.run(launcher, check=False, **popen).returncode
    peak_kib = int(report.read_text())
    report.unlink()
    return code, peak_kib / 1024
