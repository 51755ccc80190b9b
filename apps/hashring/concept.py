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


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def narrate(before: RingState | None, after: RingState | None, event: dict[str, Any]) -> str:
    """One plain-words line per event, written into the log when the event is appended."""
    kind, data = event["kind"], event["data"]
    change = after.last_change if after is not None else None
    if kind in ("node_added", "node_removed", "vnodes_set") and change is not None and after is not None:
        vn = f"{data.get('vnodes', 0)} virtual node{'' if data.get('vnodes') == 1 else 's'}"
        if kind == "node_added":
            head = f"Added node {data['name']} with {vn}"
        elif kind == "node_removed":
            head = f"Removed node {data['name']}"
        else:
            head = f"Set {data['name'] or 'every node'} to {vn}"
        total = change.total_keys
        if not total:
            return f"{head}. There are no keys yet, so nothing moves."
        if not after.nodes:
            return f"{head}: no node is left, so none of the {total:,} keys has an owner."
        if kind == "node_added" and change.nodes_before == 0:
            return f"{head}: the only node on the ring now stores all {total:,} keys."
        line = f"{head}: {change.moved:,} of {total:,} keys moved ({_pct(change.moved, total)}"
        if change.ideal is not None:
            if change.ideal_vnodes is not None:
                line += f"; ideal {change.ideal_vnodes:,}/{change.ideal_of_vnodes:,} of the vnodes ≈ {_pct(change.ideal, total)}"
            else:
                line += f"; ideal {'K/(n+1)' if kind == 'node_added' else 'K/n'} = {_pct(change.ideal, total)}"
        if kind == "vnodes_set":
            line += "). hash % N has no weights, so it would have moved nothing here."
        else:
            line += f"). hash % N would have moved {change.modulo_moved:,} ({_pct(change.modulo_moved, total)})."
        ex = change.example
        if ex:
            line += f" {ex['key']} moved from {ex['from_node']} to {ex['to_node']}: "
            if kind == "node_added":
                line += (f"{ex['to_node']}'s vnode {ex['to_node']}#{ex['to_vnode']} now sits between the key and "
                         f"{ex['from_node']}#{ex['from_vnode']}.")
            elif kind == "node_removed":
                line += (f"{ex['from_node']}#{ex['from_vnode']} is gone, so the walk clockwise now reaches "
                         f"{ex['to_node']}#{ex['to_vnode']}.")
            else:
                line += f"the first vnode clockwise from it is now {ex['to_node']}#{ex['to_vnode']}."
        return line
    if kind == "node_added":
        return f"Added node {data['name']} with {data['vnodes']} virtual nodes."
    if kind == "node_removed":
        return f"Removed node {data['name']}."
    if kind == "vnodes_set":
        return f"Set {data['name'] or 'every node'} to {data['vnodes']} virtual nodes."
    if kind == "key_added":
        key = data["key"]
        where = pic.placement(after, key) if after is not None else None
        if where is not None:
            return (f"Added key {key}: it hashes to {where['hash']:,} ({where['degrees']}°) and the first vnode "
                    f"clockwise is {where['owner']}#{where['vnode']}, so {where['owner']} stores it.")
        return f"Added key {key} (no node to store it yet)."
    if kind == "keys_added":
        return f"Added {data['count']:,} random keys."
    if kind == "ticked":
        return f"Tick: {data['count']:,} keys streamed in." if data["count"] else "Tick."
    if kind == "key_removed":
        return f"Removed key {data['key']}."
    if kind == "scene_loaded":
        return (f"New scene: {len(data['nodes'])} nodes ({', '.join(data['nodes'])}) with {data['vnodes']} virtual "
                f"node{'s' if data['vnodes'] != 1 else ''} each, {len(data['keys']) + data['random_keys']:,} keys.")
    if kind == "keys_cleared":
        return f"Cleared all {data['count']:,} keys."
    if kind == "key_looked_up":
        key = data["key"]
        if after is not None and after.nodes:
            view = pic.lookup_view(after)
            assert view is not None
            prefs = ", ".join(n for n, _ in view["prefs"])
            wrap = " (past the top of the ring, so the walk wraps to the lowest position)" if view["wrapped"] else ""
            return (f"Looked up {key}: position {view['hash']:,} ({view['degrees']}°). Walking clockwise, the first vnode "
                    f"is {view['owner']}#{view['vnode']} at {view['vnode_pos']:,}{wrap}, so {view['owner']} owns it. "
                    f"Preference list (replication factor RF={view['replicas']}): {prefs}.")
        return f"Looked up {key}."
    if kind == "replicas_set":
        return f"Replication factor set to {data['replicas']}: each key is kept on the next {data['replicas']} distinct nodes clockwise."
    if kind == "stream_rate_set":
        return f"While playing, {data['rate']} keys stream in per tick."
    return kind


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
    return fragments.render_tight("hashring/_my_entry.html", {"p": pic.placement(state, entry["entry"]), "entry": entry})


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
    narrate=narrate,
    state_json=state_json,
    ticks=True,
    rounds=(OWN_KEY_ROUND,),
    round_panel=round_panel,
    round_marks=round_marks,
    my_entry=my_entry,
    # A student's panel depends only on where their key lands: a tick that moves it draws nothing.
    my_entry_basis=lambda state, entry: pic.placement(state, entry["entry"]),
)
