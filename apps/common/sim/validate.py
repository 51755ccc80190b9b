"""Checks of the values in a command, shared by every simulation core.

A value comes from a form (text), a data attribute (text) or a script (any JSON): each check
accepts what a person could mean and refuses the rest with one sentence for the sender, which
names the allowed range. Numbers of more than twelve digits are refused without being parsed.

The rule for numbers, everywhere: an integer field takes a JSON integer or text of digits (an
``<input>`` sends text), never a boolean (``true`` is not 1), never a float (``2.5`` or ``2.0``)
and never a nested object or list. ``clean_number`` is the same for fields that may be
fractional (a clock's speed): a finite int or float, or text of a decimal number.

``text_problem`` and ``command_problem`` find what no database may store: a lone surrogate
(``"\\ud800"``, which is not UTF-8 at all) or a NUL character (which PostgreSQL refuses in text),
and numbers that are not finite. The room's consumer runs ``command_problem`` on every frame and
the room service on every command, so a concept's own checks never see them.
"""
from __future__ import annotations

import math
import re
from typing import Any

WHOLE = re.compile(r"-?[0-9]{1,12}")
DECIMAL = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,6})?")
# Lone surrogates (U+D800-U+DFFF) and NUL: what SQLite's UTF-8 and PostgreSQL's text cannot hold.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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


def clean_number(raw: Any, what: str, low: float, high: float) -> float:
    """A number from ``low`` to ``high`` that may have a fraction: a finite int or float, or text
    of a decimal number (at most twelve digits before the point and six after). Never a boolean."""
    if isinstance(raw, str):
        raw = raw.strip()
        if not DECIMAL.fullmatch(raw):
            raise Rejected(f"{what} must be a number.")
        raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise Rejected(f"{what} must be a number.")
    if isinstance(raw, int) and abs(raw) >= 10**12:
        raise Rejected(f"{what} must be from {low:g} to {high:g} (got a much larger number).")
    if not low <= raw <= high:
        raise Rejected(f"{what} must be from {low:g} to {high:g} (got {raw:g}).")
    return float(raw)


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


def text_problem(text: str) -> str | None:
    """Why this text cannot be stored, or None."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Text with a NUL character (\\u0000) is not accepted."
    return "Text with a broken character (a lone surrogate, not valid Unicode) is not accepted."


def value_problem(value: Any) -> str | None:
    """Why one value of a command cannot be accepted, or None: unstorable text, a number that is
    not finite (Python's json reads ``Infinity``, ``NaN`` and ``1e309``), or a structure where a
    command has none."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else "A number must be finite (not Infinity or NaN)."
    if value is None or isinstance(value, (bool, int)):
        return None
    return "A command's fields hold text, numbers, true/false, or a list of those."


def command_problem(command: Any) -> str | None:
    """Why this command cannot be accepted, or None. A command is an object whose field names
    are storable text and whose fields hold a scalar (``value_problem``) or a list of scalars
    (a scene's node names); nothing is nested deeper."""
    if not isinstance(command, dict):
        return "A command is an object with a type."
    for key, value in command.items():
        problem = text_problem(key) if isinstance(key, str) else "A command's field names are text."
        if problem is None and isinstance(value, list):
            problem = next((p for p in map(value_problem, value) if p), None)
            if problem is None and any(isinstance(v, (dict, list)) for v in value):
                problem = "A command's fields hold text, numbers, true/false, or a list of those."
        elif problem is None:
            problem = value_problem(value)
        if problem:
            return problem
    return None
