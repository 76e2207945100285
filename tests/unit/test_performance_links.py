"""Links into docs/performance.md, from the code and the docs, name a heading it has.

The code keeps a line of what and why and links the measurement behind it; a renamed or
removed heading would leave the reader at the top of a long page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "performance.md"
_LINK = re.compile(r"performance\.md#([\w-]+)")


def anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces
    turned into hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {anchor(m) for m in re.findall(r"^#{1,6} (.+)$", markdown, re.M)}


def links() -> list[tuple[str, str]]:
    """``(file, anchor)`` for every link into the page from src/ and docs/."""
    found = []
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    for path in files:
        for name in _LINK.findall(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), name))
    return found


def test_anchor_is_githubs() -> None:
    assert anchor("Driver cost per row and per value") == "driver-cost-per-row-and-per-value"
    assert anchor("What's `engine.Pinned` for?") == "whats-enginepinned-for"
    assert anchors("# Top\n\n### Kept connections\ntext ## not a heading\n") == {
        "top",
        "kept-connections",
    }


def test_the_code_links_its_measurements() -> None:
    assert len(links()) >= 10


@pytest.mark.parametrize(("source", "name"), links())
def test_every_link_names_a_heading(source: str, name: str) -> None:
    assert name in anchors(PAGE.read_text(encoding="utf-8")), f"{source}: #{name}"
