"""Checks of the values in a command, shared by every simulation core.

A value comes from a form (text), a data attribute (text) or a script (any JSON): each check
accepts what a person could mean and refuses the rest with one sentence for the sender, which
names the allowed range. Numbers of more than twelve digits are refused without being parsed.
"""
from __future__ import annotations

import re
from typing import Any

WHOLE = re.compile(r"-?[0-9]{1,12}")


class Rejected(Exception):
    """A command that does not fit the state; the message is shown to its sender."""


def clean_int(raw: Any, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``: an int, or text of at most twelve digits."""
    if isinstance(raw, str):
        raw = raw.strip()
        if not WHOLE.fullmatch(raw):
            raise Rejected(f"{what} must be a whole number from {low:,} to {high:,}.")
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Rejected(f"{what} must be a whole number from {low:,} to {high:,}.")
    if not low <= raw <= high:
        got = f"{raw:,}" if abs(raw) < 10**12 else "a much larger number"
        raise Rejected(f"{what} must be from {low:,} to {high:,} (got {got}).")
    return raw


def clean_name(raw: Any, what: str, max_length: int) -> str:
    """A name: printable text, trimmed, of 1 to ``max_length`` characters."""
    if not isinstance(raw, str):
        raise Rejected(f"The {what} must be text.")
    name = raw.strip()
    if not name:
        raise Rejected(f"Give the {what} a name.")
    if len(name) > max_length:
        raise Rejected(f"A {what} name has at most {max_length} characters.")
    if not name.isprintable():
        raise Rejected(f"A {what} name must be printable characters only.")
    return name
