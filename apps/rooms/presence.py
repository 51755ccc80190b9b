"""Who is connected to which room, in this process (the room clock runs only while someone
here is watching)."""
from __future__ import annotations

from collections import Counter

_COUNTS: Counter[str] = Counter()


def joined(code: str) -> None:
    _COUNTS[code] += 1


def left(code: str) -> None:
    _COUNTS[code] -= 1
    if _COUNTS[code] <= 0:
        del _COUNTS[code]


def count(code: str) -> int:
    return _COUNTS.get(code, 0)
