"""A participant's own panel, kept true for as long as their round entry lasts.

Every student who took part in the open round has an entry (``room.round["entries"]``) and a
panel only they see (``#my-entry``, drawn by the concept's ``my_entry(state, entry)``), plus one
line saying they have taken part (``#my-round``). The panel depends on the state: the log's
partitions move at every rebalance, the ring's owner when a node comes or goes, the lock race's
result when the race runs. So after every batch of events that changed the state, the engine
draws the panel again *for the entries only* (never once per viewer), compares it with the one
the state before the batch gave (what that student was last sent), and sends only the ones that
changed, each to its person's sockets (``fanout.broadcast(..., mine)``). The comparison needs no
memory of what was sent, so it holds with several processes: whoever applies the command
compares before with after. A page that missed a frame resyncs, and the full frame it gets
carries its own panel (``my_panels``).

Each drawn panel is kept per state (a few states, weakly), so a state's panels are drawn once:
the next batch's "before" is this batch's "after". Still, a batch that changes the state (a
tick, while the clock plays) draws every entry's panel once (the ring: about 0.4 ms each). A
concept that gives ``my_entry_basis`` (a cheap value the panel depends on) spares that: a panel
is drawn only when its basis moved.

When a round closes, opens again, or its game starts afresh (a new scene, a new race), the
common broadcast empties every panel (``CLEARED``).
"""
from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .registry import Concept

CLEARED_ENTRY = '<section id="my-entry" class="panel mine" hx-swap-oob="outerMorph"></section>'
CLEARED_STATUS = '<p id="my-round" class="round-done" role="status" hx-swap-oob="outerMorph"></p>'
CLEARED = CLEARED_ENTRY + CLEARED_STATUS

Entry = dict[str, Any]


class _PanelCache:
    """Drawn panels of the last few states: id(state) -> (weak ref, {entry: html})."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[int, tuple[weakref.ref[Any], dict[tuple[str, str, str], str]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def panels(self, state: Any) -> dict[tuple[str, str, str], str]:
        with self._lock:
            item = self._items.get(id(state))
            if item is None or item[0]() is not state:
                item = (weakref.ref(state), {})
                self._items[id(state)] = item
            self._items.move_to_end(id(state))
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            return item[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PANELS = _PanelCache()


def _key(entry: Entry) -> tuple[str, str, str]:
    return (str(entry.get("pid", "")), str(entry.get("name", "")), str(entry.get("entry", "")))


def entry_html(concept: Concept, state: Any, entry: Entry) -> str:
    """The concept's own panel for ``entry`` in ``state``, drawn once per state."""
    assert concept.my_entry is not None
    panels = PANELS.panels(state)
    key = _key(entry)
    html = panels.get(key)
    if html is None:
        html = panels[key] = str(concept.my_entry(state, entry))
    return html


def open_round(current: dict[str, Any] | None) -> dict[str, Any] | None:
    return current if current and current.get("open") else None


def entry_of(current: dict[str, Any] | None, person: str) -> Entry | None:
    """``person``'s entry in the open round, if they have taken part."""
    found = open_round(current)
    if not person or found is None:
        return None
    return next((e for e in found.get("entries", []) if e.get("pid") == person), None)


def status_html(current: dict[str, Any], entry: Entry, moves: bool = False) -> str:
    """The line that replaces a participant's round form once they have taken part (in a round
    of moves, once they have joined it: their own panel has what to do next)."""
    if moves:
        return format_html(
            '<p id="my-round" class="round-done" role="status" hx-swap-oob="outerMorph">'
            "You are in <strong>{}</strong>: {}. Your own panel shows what to do next.</p>",
            current.get("title", "this round"), entry.get("entry", ""),
        )
    return format_html(
        '<p id="my-round" class="round-done" role="status" hx-swap-oob="outerMorph">'
        "You have taken part in <strong>{}</strong>: {}. One entry each in this round.</p>",
        current.get("title", "this round"), entry.get("entry", ""),
    )


def _moves(concept: Concept, current: dict[str, Any]) -> bool:
    spec = concept.round_spec(str(current.get("kind", "")))
    return spec is not None and spec.moves


def my_panels(concept: Concept, state: Any, current: dict[str, Any] | None, person: str) -> SafeString:
    """``person``'s panel and status line as they stand (empty ones when they have no entry).
    Both are escaped where they are drawn (the concept's template, ``status_html``)."""
    entry = entry_of(current, person)
    if entry is None or concept.my_entry is None or current is None:
        return mark_safe(CLEARED)
    return mark_safe(entry_html(concept, state, entry) + status_html(current, entry, _moves(concept, current)))


def personal_frame(html: str) -> str:
    """A frame for one person: no seq (it follows the broadcast it belongs to)."""
    return json.dumps({"content": html})


def changed_panels(concept: Concept, round_before: dict[str, Any] | None, round_after: dict[str, Any] | None,
                   before: Any, after: Any) -> dict[str, str]:
    """person -> frame, for each participant whose own panel is new or differs after a batch."""
    current = open_round(round_after)
    if concept.my_entry is None or current is None or not current.get("entries"):
        return {}
    earlier = {e.get("pid"): e for e in (open_round(round_before) or {}).get("entries", [])}
    out: dict[str, str] = {}
    for entry in current["entries"]:
        person = entry.get("pid")
        if not person:
            continue
        same_entry = earlier.get(person) == entry
        if same_entry and before is after:
            continue  # nothing this panel depends on moved
        basis = concept.my_entry_basis
        if same_entry and before is not None and basis is not None and basis(before, entry) == basis(after, entry):
            continue  # the concept says: what this panel shows did not move
        html = entry_html(concept, after, entry)
        if same_entry and before is not None and basis is None and entry_html(concept, before, entry) == html:
            continue
        out[person] = personal_frame(html + status_html(current, entry, _moves(concept, current)))
    return out
