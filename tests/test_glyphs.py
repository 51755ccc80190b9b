"""Every character a page can show renders with the fonts a Debian machine has.

A projector laptop shows an empty box for a symbol no installed font covers (the pause sign
U+23F8 did, with Debian's fonts). Every non-ASCII character in the templates, the static files,
the pictures, the narrations and the lessons must be covered by some installed font, as
fontconfig sees it. Icons that no common font has are drawn in SVG instead.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    *ROOT.glob("templates/**/*.html"),
    *ROOT.glob("apps/*/templates/**/*.html"),
    *ROOT.glob("apps/*/*.py"),
    *ROOT.glob("apps/*/sim/*.py"),
    *ROOT.glob("apps/*/lessons/*.toml"),
    *ROOT.glob("static/distviz/*.js"),
    *ROOT.glob("static/distviz/*.css"),
    *ROOT.glob("apps/*/static/**/*.css"),
]


@lru_cache(maxsize=None)
def covered(char: str) -> bool:
    out = subprocess.run(["fc-list", f":charset={ord(char):x}", "family"], capture_output=True, text=True, timeout=30)
    return bool(out.stdout.strip())


def shown_characters() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        for char in path.read_text(encoding="utf-8"):
            if ord(char) > 0x7F and not char.isspace():
                found.setdefault(char, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_sources_are_scanned():
    chars = shown_characters()
    assert "→" in chars and "≈" in chars or "−" in chars, "the scan found none of the arrows and signs the pages use"


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig's fc-list is not installed: cannot ask which fonts cover a character")
def test_every_shown_character_has_a_font():
    missing = {c: sorted(where) for c, where in shown_characters().items() if not covered(c)}
    assert not missing, "no installed font covers: " + "; ".join(f"U+{ord(c):04X} {c!r} in {', '.join(w)}" for c, w in missing.items())
