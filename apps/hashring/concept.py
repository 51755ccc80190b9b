"""The hash ring as the room engine sees it: decider, picture, narration, JSON."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from django.utils.safestring import mark_safe

from apps.rooms import fragments
from apps.rooms.registry import Concept, RoundSpec, RoomView

from . import geometry
from . import picture as pic
from . import sim
from .sim import RingState


def limits() -> sim.Limits:
    conf = settings.DISTVIZ_LIMITS
    return sim.Limits(max_nodes=conf["max_nodes"], max_vnodes=conf["max_vnodes"], max_keys=conf["max_keys"],
                      max_name_length=conf["max_name_length"])


def decide(state: RingState, command: dict[str, Any]) -> list[dict[str, Any]]:
    return sim.decide(state, command, limits())


def page_context(state: RingState, view: RoomView) -> dict[str, Any]:
    picture = pic.picture(state, view)
    return {
        "layers": {k.replace("-", "_"): v for k, v in pic.svg_layers(picture).items()},
        "panels": {k.replace("-", "_"): v for k, v in picture.panels.items()},
        "ring": state,
        "limits": limits(),
    }


def render_full(state: RingState, view: RoomView) -> str:
    return fragments.full(pic.picture(state, view))


def render_update(before: RingState, after: RingState, events: list[dict[str, Any]], view: RoomView) -> str:
    old = pic.picture(before, view)
    new = pic.picture(after, view, before=before)
    return fragments.diff(old, new)


def state_json(state: RingState) -> dict[str, Any]:
    """The documented state: the fold of the log, plus what follows from it."""
    doc = sim.to_json(state)
    doc["derived"] = {
        "counts": state.counts,
        "shares": pic.arc_shares(state),
        "load": pic.load_stats(state),
        "lookup": None if state.lookup is None or not state.nodes else {
            "key": state.lookup,
            "position": sim.key_position(state.lookup),
            "owner": state.owner_of(state.lookup),
            "preference_list": [n for n, _ in state.preference_list(state.lookup)],
        },
    }
    return doc


def own_key_command(state: RingState, body: dict[str, Any], name: str) -> dict[str, Any]:
    """A student's entry: a key named after them (or the text they typed instead)."""
    key = body.get("key")
    return {"type": "add_key", "key": key if isinstance(key, str) and key.strip() else name}


OWN_KEY_ROUND = RoundSpec(
    kind="own_key",
    title="Add your own key",
    instructions="add one key (your name) and see which node stores it.",
    student_command="add_my_key",
    to_command=own_key_command,
)


def round_panel(state: RingState, current: dict[str, Any] | None) -> str:
    """The class leaderboard: the round's keys grouped by the node that stores them now."""
    board: dict[str, list[str]] = {}
    entries = (current or {}).get("entries", [])
    for entry in entries:
        owner = state.owner_of(entry["entry"]) if entry["entry"] in state.key_set else None
        board.setdefault(owner or "(removed)", []).append(entry["name"])
    rows = sorted(board.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    most = max((len(v) for v in board.values()), default=1)
    slots = {n.name: pic.colour(n.slot) for n in state.nodes}
    leaderboard = [{"node": node, "names": names, "count": len(names), "colour": slots.get(node, "")} for node, names in rows]
    return fragments.render_tight("hashring/_round.html",
                                  {"round": current, "leaderboard": leaderboard, "entries": len(entries), "most": most})


def round_marks(state: RingState, current: dict[str, Any] | None) -> str:
    """The round's keys on the ring itself, each labelled with its student's name."""
    parts = []
    for entry in (current or {}).get("entries", []):
        key = entry["entry"]
        if key not in state.key_set:
            continue
        h = sim.key_position(key)
        # Inside the band the lookup's rank badges use (R_RANK): a student's name never sits
        # under a replica's number when the presenter looks that student's key up.
        x, y = geometry.point(h, geometry.R_ROUND_MARK)
        lx, ly = geometry.point(h, geometry.R_ROUND_NAME)
        parts.append(fragments.markup(
            "<g class='round-mark'><circle cx='{}' cy='{}' r='13'/><text x='{}' y='{}'>{}</text></g>",
            geometry.fmt(x), geometry.fmt(y), geometry.fmt(lx), geometry.fmt(ly), entry["name"],
        ))
    return mark_safe("".join(parts))


def my_entry(state: RingState, entry: dict[str, Any]) -> str:
    """The student's own result, sent to that student only."""
    return fragments.render_tight("hashring/_my_entry.html", {"p": sim.placement(state, entry["entry"]), "entry": entry})


CONCEPT = Concept(
    slug="hashring",
    title="Hash ring",
    blurb="Consistent hashing with virtual nodes: add a server and watch only a few keys move.",
    initial_state=sim.initial_state,
    decide=decide,
    evolve=sim.evolve,
    to_json=sim.to_json,
    from_json=sim.from_json,
    rejected=sim.Rejected,
    page_template="hashring/page.html",
    page_context=page_context,
    render_full=render_full,
    render_update=render_update,
    narrate=sim.narrate,
    state_json=state_json,
    ticks=True,
    rounds=(OWN_KEY_ROUND,),
    round_panel=round_panel,
    round_marks=round_marks,
    my_entry=my_entry,
    # A student's panel depends only on where their key lands: a tick that moves it draws nothing.
    my_entry_basis=lambda state, entry: sim.placement(state, entry["entry"]),
)
