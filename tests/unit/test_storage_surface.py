"""``voicecdr.storage`` names what the rest of the code may use: code outside storage/ (and
bench/) imports those names from the package, never a module of it or a name it does not
list. Alembic's ``storage.migrations`` is the one module reached by path."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import voicecdr.storage as storage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "voicecdr"
STORAGE = PACKAGE / "storage"
ALLOWED_MODULES = {"voicecdr.storage.migrations"}


def _package(path: Path) -> str:
    """The dotted package a source file's relative imports start from (none in bench/)."""
    if not path.is_relative_to(PACKAGE):
        return ""
    return ".".join(path.relative_to(ROOT / "src").parts[:-1])


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def violations(source: str, package: str = "") -> Iterator[str]:
    """What in ``source`` reaches into storage past its public names."""
    public = set(storage.__all__)
    bound: set[str] = set()  # local names of the voicecdr.storage package itself
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("voicecdr.storage.") and not _allowed(alias.name):
                    yield f"line {node.lineno}: import {alias.name}"
                elif alias.name == "voicecdr.storage" and alias.asname:
                    bound.add(alias.asname)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            if module == "voicecdr.storage":
                for alias in node.names:
                    if alias.name not in public:
                        yield f"line {node.lineno}: from {module} import {alias.name}"
            elif module.startswith("voicecdr.storage.") and not _allowed(module):
                yield f"line {node.lineno}: from {module} import ..."
            elif module == "voicecdr":
                bound.update(a.asname or a.name for a in node.names if a.name == "storage")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and node.attr not in public
        ):
            yield f"line {node.lineno}: {node.value.id}.{node.attr}"


def _allowed(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in ALLOWED_MODULES)


def _sources() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORAGE not in path.parents:
            yield path
    yield from sorted((ROOT / "bench").rglob("*.py"))


def test_code_outside_storage_uses_only_its_public_names() -> None:
    found = {
        str(path.relative_to(ROOT)): problems
        for path in _sources()
        if (problems := list(violations(path.read_text(), _package(path))))
    }
    assert found == {}


def test_the_check_finds_each_way_past_the_public_names() -> None:
    source = (
        "from voicecdr.storage.pages import SQL\n"
        "import voicecdr.storage.engine\n"
        "from voicecdr.storage import schema, Database\n"
        "from voicecdr import storage\n"
        "storage.Database, storage.counts\n"
        "from ..storage.writes import Outcome\n"
        "from ..storage import CdrWriter\n"
        "from voicecdr.storage.migrations import env\n"
    )
    assert list(violations(source, "voicecdr.api")) == [
        "line 1: from voicecdr.storage.pages import ...",
        "line 2: import voicecdr.storage.engine",
        "line 3: from voicecdr.storage import schema",
        "line 6: from voicecdr.storage.writes import ...",
        "line 5: storage.counts",
    ]


def test_every_public_name_is_typed_and_found_where_the_table_says() -> None:
    """The TYPE_CHECKING imports (for mypy) and the table (for the lazy imports) agree,
    and each name is the object its module defines."""
    tree = ast.parse((STORAGE / "__init__.py").read_text())
    typed = {
        alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names
    }
    assert typed == storage._MODULES
    for name, module in storage._MODULES.items():
        defined = getattr(__import__(f"voicecdr.storage.{module}", fromlist=[name]), name)
        assert getattr(storage, name) is defined


def test_importing_the_package_loads_none_of_its_modules() -> None:
    # So that a CLI command loads only what it uses (the rating modules bring msgspec).
    code = (
        "import sys, voicecdr.storage\n"
        "print(sorted(m for m in sys.modules if m.startswith('voicecdr.storage.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'Store'"):
        storage.Store  # noqa: B018
