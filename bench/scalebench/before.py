"""The product "before" a change: another checkout's ``src`` served beside this one's.

``bench/scale.py --before-src DIR`` runs ``voicecdr serve --workers 1`` a second time, with
this interpreter and ``PYTHONPATH=DIR``, so that the two versions are measured in turns
within one run on the same data set. The checks here make sure that process really runs
DIR's code, and that both versions expect the same schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from voicecdr.storage import head_revision

# Where `import voicecdr` resolves, and the Alembic head of that code.
_PROBE = (
    "import voicecdr\n"
    "from voicecdr.storage import migrate\n"
    "print(voicecdr.__file__)\n"
    "print(migrate.head_revision())\n"
)


def env(src: Path) -> dict[str, str]:
    """Added to a server's environment to run the product from ``src``: PYTHONPATH comes
    before the installed (or editable) package on ``sys.path``."""
    return {"PYTHONPATH": str(src.resolve())}


def check(src: Path) -> str:
    """The path of the ``voicecdr`` package under ``src``, after checking that a process
    started as the servers are imports it from there and that its schema head is ours;
    ``SystemExit`` with the reason otherwise."""
    src = src.resolve()
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, **env(src)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise SystemExit(f"--before-src {src}: the product does not import from there:\n"
                         f"{probe.stderr[-2000:]}")  # fmt: skip
    module, head = probe.stdout.splitlines()[-2:]
    if Path(module).resolve().parent != src / "voicecdr":
        raise SystemExit(
            f"--before-src {src}: `import voicecdr` resolves to {module}, not to "
            f"{src / 'voicecdr'} (give the checkout's src directory, the one holding voicecdr/)"
        )
    ours = head_revision()
    if head != ours:
        raise SystemExit(
            f"--before-src {src}: its schema head is {head}, this checkout's is {ours}; "
            "both versions must serve the same database"
        )
    return str(Path(module).parent)
