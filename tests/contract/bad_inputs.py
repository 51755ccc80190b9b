"""The shared table of bad input: every kind of wrong value for each kind of field, refused by
every command of every concept with a sentence and nothing appended
(``apps/common/sim/validate.py`` states the rule).

An integer field takes a JSON integer or text of digits (what a form's ``<input>`` sends), never
``true``, ``2.5``, ``"2.5"``, ``"NaN"``, a negative count or a number past its range; a fractional
field (speed) a finite number or decimal text; an on/off field ``true``/``false`` or a form's
"on"/"off"; a text field text of a sensible length. In any field, a nested object, a list of
lists, Infinity/NaN, a NUL character or a lone surrogate is refused, and so is a NUL or a lone
surrogate in a field's name. Markup in a text field is either refused or shown as text.

Used by ``tests/contract/test_page.py`` (every command a room page can send, its fields' kinds read
from the page) and ``tests/rooms/test_bad_values.py`` (a hand-written table of commands).
"""
from __future__ import annotations

import math
import re
from typing import Any

INT = "int"
NUMBER = "number"
SWITCH = "switch"
TEXT = "text"
NAMES = "names"  # a list of names
NONE = "none"  # a command without fields: a stray field carries the bad value

# In any field, whatever the field is.
ANY_FIELD: list[Any] = [{"a": 1}, [[1]], [{"a": 1}], math.inf, -math.inf, math.nan, "\x00", "a\x00b", "\ud800", "x\udfffy",
                        ["ok", "\x00"], ["\ud800"]]
BAD: dict[str, list[Any]] = {
    INT: [True, False, 2.5, 2.0, "2.5", "1e3", "0x10", " ", "ten", 10**30, "9" * 40, -10**30, [3], ["3"]],
    NUMBER: [True, False, "fast", "1e3", "nan", "inf", 10**30, [2]],
    SWITCH: [2, 2.5, "maybe", [True], ["on"]],
    TEXT: [True, False, ["a"], 3.5, "x" * 500],
    NAMES: ["A", True, 3, [True], [["A"]], ["A", 3]],
    NONE: [],
}
# What a page's field may also be sent (a hand-edited form, a replayed frame): text that is no
# number, and a negative count.
MORE: dict[str, list[Any]] = {
    INT: ["NaN", "Infinity", "-Infinity", -1, "-1"],
    NUMBER: ["NaN", "Infinity", "-Infinity", -1e309],
}
# Field names no database stores.
FIELD_NAMES = ["\x00", "\ud800", "a\x00"]
# Markup in a text field: refused, or accepted and never sent as markup.
MARKUP = ['"><svg onload=alert(1)>', "<b>x</b>", "<script>x</script>"]


def bad_values(kind: str, first: bool = True) -> list[Any]:
    """The wrong values for a field of ``kind``; with ``first``, also what is wrong in any field
    (checked on one field per command: the check does not look at which field it is)."""
    return (ANY_FIELD if first else []) + BAD[kind] + MORE.get(kind, [])


WHOLE = re.compile(r"-?\d+")
DECIMAL = re.compile(r"-?\d*\.\d+")
SWITCH_WORDS = ("true", "false", "on", "off")


def kind_of(value: Any, input_type: str = "") -> str:
    """A field's kind from what the page puts in it (and its ``<input type>``)."""
    if input_type == "number":
        return NUMBER if isinstance(value, str) and DECIMAL.fullmatch(value) else INT
    if input_type == "checkbox" or isinstance(value, bool) or (isinstance(value, str) and value.lower() in SWITCH_WORDS):
        return SWITCH
    if isinstance(value, int) or (isinstance(value, str) and WHOLE.fullmatch(value)):
        return INT
    if isinstance(value, float) or (isinstance(value, str) and DECIMAL.fullmatch(value)):
        return NUMBER
    return TEXT
