"""Peak memory of running processes, from Linux's /proc (VmHWM: the resident set's
high-water mark since the process started)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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


def run_measured(command: list[str], **popen: object) -> tuple[int, float]:
    """Run ``command`` to its end; its exit status and its own peak RSS in MB (from
    wait4's rusage, which covers exactly this child)."""
    process = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024
