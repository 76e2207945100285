"""The console's catalog: both languages say everything, with the same placeholders,
and every key a template uses exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

from voicecdr.console import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_english_and_chinese_have_the_same_keys_and_placeholders() -> None:
    assert set(i18n.EN) == set(i18n.ZH)
    for key, text in i18n.EN.items():
        assert placeholders(text) == placeholders(i18n.ZH[key]), key


def test_every_key_the_templates_name_is_in_the_catalog() -> None:
    used = {
        key
        for page in TEMPLATES.glob("*.html")
        for key in re.findall(r"""\bt\(\s*["']([\w.]+)["']""", page.read_text())
    }
    assert used
    assert used <= set(i18n.EN), used - set(i18n.EN)


def test_every_key_is_used_somewhere() -> None:
    console = Path(i18n.__file__).parent
    sources = "".join(
        path.read_text()
        for path in [*console.rglob("*.py"), *TEMPLATES.glob("*.html")]
        if path.name != "i18n.py"
    )
    unused = {key for key in i18n.EN if f'"{key}"' not in sources and f"'{key}'" not in sources}
    assert not unused, unused


def test_an_unknown_language_falls_back() -> None:
    assert i18n.language("fr", "zh") == "zh"
    assert i18n.language(None, "de") == "en"
    assert i18n.translator("zh")("signin.locked_out", wait="30").startswith("此地址")
