"""The ```shell blocks of a markdown page, and the HTML comments that tell a test how to run them.

A comment on the line just before a fenced block applies to it (several may stand there;
"; " separates the commands of one):

- ``<!-- not run: REASON -->``: the block cannot run in a test (installs, real hosts).
- ``<!-- run first: COMMANDS -->``: what the reader has done by then, run before the block.
- ``<!-- run instead: COMMANDS -->``: run these in place of the block (for example
  ``./scripts/demo``, which installs into the checkout, is replaced by what it runs).
- ``<!-- file: NAME -->``: on a code block of another language, the reader saves it as NAME.
- ``<!-- output -->``: on a ```json block, what the shell block above prints (compared parsed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

_FENCE = re.compile(r"^([ \t]*)```(\w*)\n(.*?)^\1```[ \t]*\n", re.M | re.S)
_COMMENT = re.compile(r"<!--\s*([a-z ]+?)\s*(?::\s*(.*?))?\s*-->\s*$", re.S)
DIRECTIVES = ("not run", "run first", "run instead", "file", "output")


@dataclass
class Block:
    """One fenced block, where it stands, and the directives just before it."""

    page: Path
    line: int
    lang: str
    text: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page.as_posix()}:{self.line}"


def blocks(page: Path, root: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").splitlines()
        directives: dict[str, str] = {}
        while before and (comment := _COMMENT.match(before[-1].strip())):
            name, value = comment.group(1), comment.group(2) or ""
            if name not in DIRECTIVES:
                raise ValueError(f"{page}: unknown directive <!-- {name} -->")
            directives[name] = " ".join(value.split())
            before.pop()
        line = text.count("\n", 0, match.start()) + 1
        found.append(
            Block(page.relative_to(root), line, match.group(2), dedent(match.group(3)), directives)
        )
    return found


def output_matches(expected: Block, actual: str) -> bool:
    """Whether a command printed the JSON that the page shows."""
    if expected.lang != "json":
        raise ValueError(f"{expected.where}: <!-- output --> is for ```json blocks")
    try:
        return bool(json.loads(actual) == json.loads(expected.text))
    except ValueError:
        return False
