"""The console's message catalogue (liebian/web/messages): every key a template or a page names is in
it, in both languages, and nothing adds to it at run time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from liebian.web import messages
from liebian.web.i18n import LOCALES, translator
from liebian.web.messages import CATALOGUE

WEB = Path(messages.__file__).parents[1]
# a literal shaped like a message key, e.g. "quality.step.hashing identifiers"
KEY_SHAPE = re.compile(r"[a-z_0-9]+(\.[a-z_0-9 ]+)+")
TEMPLATE_KEY = re.compile(r"""\bt\(["']([a-z_.0-9]+)["']\)""")
NAMESPACES = {key.split(".")[0] for key in CATALOGUE}


def _page_sources() -> list[Path]:
    return [WEB / "console.py", WEB / "app.py", *sorted((WEB / "pages").rglob("*.py"))]


def _names_in_python(path: Path) -> tuple[set[str], set[str]]:
    """The message keys a page module names, and the prefixes of those it builds (f"fraud.act.{a}")."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_fstrings = {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
    }
    # code prefixes: Column(..., codes="quality.tablename") and code_name(t, "alerts.scopekey", code)
    for node in ast.walk(tree):
        named = None
        if isinstance(node, ast.keyword) and node.arg == "codes":
            named = node.value
        elif (
            isinstance(node, ast.Call) and getattr(node.func, "id", "") == "code_name" and len(node.args) > 1
        ):
            named = node.args[1]
        if isinstance(named, ast.Constant) and isinstance(named.value, str):
            prefixes.add(named.value + ".")
            in_fstrings.add(id(named))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            if head.split(".")[0] in NAMESPACES and re.fullmatch(r"[a-z_0-9]+\.[a-z_.0-9]*", head):
                prefixes.add(head)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings:
            value = node.value
            if (
                KEY_SHAPE.fullmatch(value)
                and value.split(".")[0] in NAMESPACES
                and not value.endswith(".html")
            ):
                keys.add(value)
    return keys, prefixes


def test_every_message_a_template_or_page_names_exists_in_both_languages() -> None:
    used: dict[str, str] = {}
    for path in (WEB / "templates").rglob("*.html"):
        for key in TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")):
            used.setdefault(key, path.name)
    assert used, "found no messages in the templates"
    built: dict[str, str] = {}
    for path in _page_sources():
        keys, prefixes = _names_in_python(path)
        used.update({key: path.name for key in keys if key not in used})
        built.update({prefix: path.name for prefix in prefixes})
    assert len(used) > 500, "found too few messages in the pages"  # the scan itself still works
    missing = sorted(f"{key} ({where})" for key, where in used.items() if key not in CATALOGUE)
    assert not missing, f"messages used but not in liebian/web/messages: {missing}"
    unbuildable = sorted(
        f"{p} ({where})" for p, where in built.items() if not any(k.startswith(p) for k in CATALOGUE)
    )
    assert not unbuildable, f"message prefixes no catalogue key starts with: {unbuildable}"
    for key, texts in CATALOGUE.items():
        assert len(texts) == len(LOCALES) and all(isinstance(s, str) and s.strip() for s in texts), key


def test_each_message_is_defined_once_and_the_catalogue_is_read_only() -> None:
    defined = [key for group in messages.GROUPS for key in group.MESSAGES]
    duplicates = sorted({key for key in defined if defined.count(key) > 1})
    assert not duplicates, f"messages defined in more than one catalogue module: {duplicates}"
    assert len(CATALOGUE) == len(defined)
    with pytest.raises(TypeError):
        CATALOGUE["x.y"] = ("甲", "a")  # type: ignore[index]


def test_the_translator_reads_the_catalogue_in_each_language() -> None:
    assert translator("zh-CN")("nav.overview") == "总览"
    assert translator("en")("nav.overview") == "Overview"
    assert translator("fr")("nav.overview") == "总览"  # an unknown locale falls back to Chinese
    assert translator("en")("no.such.message") == "no.such.message"
