"""The distributed log as the room engine sees it: decider, picture, narration, JSON."""
from __future__ import annotations

from typing import Any


from apps.rooms import fragments
from apps.rooms.registry import Concept, RoomView, RoundSpec

from . import picture as pic
from . import sim
from .sim.cluster import ClusterState


def decide(state: ClusterState, command: dict[str, Any]) -> list[dict[str, Any]]:
    return sim.decide(state, command)


def page_context(state: ClusterState, view: RoomView) -> dict[str, Any]:
    picture = pic.picture(state, view)
    return {
        "layers": {k.replace("-", "_"): v.inner() for k, v in picture.layers.items()},
        "panels": {k.replace("-", "_"): v for k, v in picture.panels.items()},
        "cluster": state,
        "svg_height": pic.height(state),
        "svg_width": pic.WIDTH,
        "brokers": range(len(state.brokers_up)),
        "groups": sim.group_summaries(state),
        "producers": sim.producer_summaries(state),
        "assignors": sim.ASSIGNORS,
    }


def render_frame(state: ClusterState, view: RoomView) -> str:
    """The whole picture frame and panels, for a first paint or when the frame's size changes."""
    picture = pic.picture(state, view)
    layers = {k.replace("-", "_"): v.inner() for k, v in picture.layers.items()}
    frame = fragments.render_tight("logpartitions/_frame.html", {"layers": layers, "svg_height": pic.height(state),
                                                                       "svg_width": pic.WIDTH, "oob": True})
    return frame + fragments.full(fragments.Picture(panels=picture.panels))


def render_full(state: ClusterState, view: RoomView) -> str:
    return render_frame(state, view)


def render_update(before: ClusterState, after: ClusterState, events: list[dict[str, Any]], view: RoomView) -> str:
    if pic.height(before) != pic.height(after) or len(before.brokers_up) != len(after.brokers_up):
        return render_frame(after, view)
    return fragments.diff(pic.picture(before, view), pic.picture(after, view, events))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _leader_of(state: ClusterState | None, partition: int) -> str:
    part = state.partitions[partition] if state is not None and partition < len(state.partitions) else None
    return "?" if part is None or part.leader is None else str(part.leader)


def _election(e: dict[str, Any]) -> str:
    """One partition's leader election, in words: never "bNone" (an offline partition has no leader)."""
    p = e["partition"]
    if e.get("offline"):
        return f"P{p} is offline: no in-sync replica is running, so it has no leader and takes no writes"
    if e.get("old_leader") is None:
        text = f"P{p} is back online: leader b{e['new_leader']}"
    else:
        text = f"P{p} leader b{e['old_leader']} → b{e['new_leader']}"
    if not e.get("clean"):
        text += " (unclean: it was not in sync)"
    committed = e.get("committed_lost", 0)
    acked_only = e.get("lost", 0) - committed
    if committed:
        text += f"; LOST {_plural(committed, 'committed record')}"
    if acked_only > 0:
        text += (f"; LOST {_plural(acked_only, 'record')} the leader alone had acknowledged (acks=1)")
    if e.get("never_acked"):
        n = e["never_acked"]
        text += (f"; {_plural(n, 'record')} the producer was never told {'was' if n == 1 else 'were'} written "
                 "(acks=all, above the HW) are cut: its request fails and it retries them")
    if e.get("fire_and_forget"):
        text += f"; {_plural(e['fire_and_forget'], 'acks=0 record')} above the HW cut, unnoticed (nobody waited)"
    return text


def _after_append(state: ClusterState | None, f: dict[str, Any]) -> str:
    """acks=all records that reached the HW while the ISR was below min.insync.replicas."""
    part = state.partitions[f["partition"]] if state is not None else None
    isr = "{" + ", ".join(f"b{b}" for b in part.isr) + "}" if part is not None else "the ISR"
    need = state.config.min_insync_replicas if state is not None else "min.insync.replicas"
    n = f["records"]
    return (f"NotEnoughReplicasAfterAppend: {_plural(n, 'record')} of {f['producer']} on P{f['partition']} "
            f"{'is' if n == 1 else 'are'} written, but the ISR {isr} is smaller than min.insync.replicas = {need}, "
            f"so {f['producer']} is told the write failed")


def narrate(before: ClusterState | None, after: ClusterState | None, event: dict[str, Any]) -> str:
    kind, d = event["kind"], event["data"]
    if kind == "record_produced":
        if d["chosen_by"] == "key":
            how = (f"key {d['key']!r}: murmur2 = {d['hash']:,}, & 0x7fffffff = {d['positive']:,}, "
                   f"% {d['partitions']} = {d['partition']}")
        else:
            how = f"no key: the sticky partitioner {'switched to' if d.get('sticky_switched') else 'keeps filling'} P{d['partition']}"
        ack = {"acknowledged": "acknowledged", "waiting_for_isr": "waiting for the ISR (acks=all)",
               "fire_and_forget": "not waited for (acks=0)"}.get(d["ack"], d["ack"])
        return f"{d['producer']} wrote {d['value']} to P{d['partition']} at offset {d['offset']} ({how}); leader b{d['leader']}; {ack}."
    if kind == "burst_produced":
        ex = d.get("example")
        tail = (f" Example: {ex['key']!r} → P{ex['partition']}." if ex else "")
        failed = "; ".join(f"{p['records']:,} to P{p['partition']} failed: {p['error']}"
                           for p in d["per_partition"] if p["error"])
        return (f"{d['producer']} sent a burst of {_plural(d['count'], 'record')}: {d['appended']:,} written over "
                f"{sum(1 for p in d['per_partition'] if not p['error'])} partition(s)"
                f"{'; ' + failed if failed else ''}.{tail}")
    if kind == "produce_failed":
        if "per_partition" in d:  # a burst (or a streaming tick) that landed nowhere
            where = ", ".join(f"P{p['partition']}: {p['error']}" for p in d["per_partition"][:6])
            return f"{d['producer']}'s {_plural(d['count'], 'record')} all failed ({where})."
        if d.get("partition") is None:
            return f"Produce failed: {d['reason']}: no partition has a leader to take the record."
        if d["reason"] == "NotEnoughReplicas":
            return (f"Produce to P{d['partition']} failed: NotEnoughReplicas. The ISR has {len(d.get('isr', []))} "
                    f"member(s), min.insync.replicas is {d.get('min_insync')}, and acks=all needs them.")
        return f"Produce to P{d['partition']} failed: {d['reason']} (the partition has no leader)."
    if kind == "ticked":
        parts = []
        if d.get("fetched"):
            parts.append(f"followers fetched {_plural(sum(f['records'] for f in d['fetched']), 'record')}")
        if d.get("hw_moved"):
            parts.append("HW advanced on " + ", ".join(f"P{h['partition']} to {h['to']}" for h in d["hw_moved"][:4]))
        if d.get("isr_shrunk"):
            parts.append("ISR shrank: " + ", ".join(f"b{s['broker']} left P{s['partition']}" for s in d["isr_shrunk"][:4]))
        if d.get("isr_expanded"):
            parts.append("ISR grew: " + ", ".join(f"b{s['broker']} rejoined P{s['partition']}" for s in d["isr_expanded"][:4]))
        if d.get("acked"):
            parts.append(f"{_plural(sum(a['records'] for a in d['acked']), 'record')} acknowledged")
        for f in d.get("failed_after_append", [])[:4]:
            parts.append(_after_append(after, f))
        if d.get("retention"):
            parts.append(f"retention deleted {_plural(sum(r['records'] for r in d['retention']), 'record')} "
                         "in whole segments")
        for r in d.get("offset_resets", [])[:4]:
            parts.append(f"{r['group']} skips P{r['partition']} from offset {r['from']} to {r['to']} (deleted)")
        if d.get("consumed"):
            parts.append(f"consumers read {sum(c['records'] for c in d['consumed']):,}")
        return f"Tick {d['tick']}: " + ("; ".join(parts) if parts else "nothing to do") + "."
    if kind in ("broker_stopped", "broker_started", "unclean_set"):
        head = {"broker_stopped": f"Broker {d.get('broker')} stopped", "broker_started": f"Broker {d.get('broker')} restarted",
                "unclean_set": f"unclean.leader.election.enable = {str(d.get('on')).lower()}"}[kind]
        notes = [_election(e) for e in d.get("elections", [])[:4]]
        if d.get("fenced_from_isr"):
            notes.append("it leaves the ISR of " + ", ".join(f"P{i}" for i in d["fenced_from_isr"]))
        for t in d.get("truncated", [])[:4]:
            notes.append(f"its copy of P{t['partition']} drops {_plural(t['from'] - t['to'], 'record')} above the HW "
                         f"and follows b{_leader_of(after, t['partition'])}")
        return head + (": " + "; ".join(notes) if notes else "") + "."
    if kind in ("member_joined", "member_left", "assignor_set"):
        rb = d.get("rebalance", {})
        who = {"member_joined": f"{d.get('member')} joined {d.get('group')}", "member_left": f"{d.get('member')} left {d.get('group')}",
               "assignor_set": f"{d.get('group')} now uses the {d.get('assignor')} assignor"}[kind]
        moved = rb.get("moved") or []
        idle = rb.get("idle") or []
        text = f"{who}: rebalance ({rb.get('protocol', '')}, generation {rb.get('generation', '')})"
        if moved:
            text += f", {len(moved)} partition(s) moved"
        if idle:
            text += f"; idle: {', '.join(idle)} (more consumers than partitions)"
        return text + "."
    if kind == "producer_set":
        return f"Producer {d.get('producer')} uses acks={d.get('acks')}."
    if kind == "producer_rate_set":
        if not d["rate"]:
            return f"{d['producer']} stopped streaming."
        keys = "no key (sticky partitioner)" if d["pattern"] == "none" else f"keys {d['pattern']}"
        return f"{d['producer']} streams {d['rate']} records per tick, {keys}."
    if kind == "config_set":
        return f"{d['setting']} = {d['value']} (was {d['previous']})."
    if kind == "retention_set":
        deleted = sum(r["records"] for r in d.get("deleted", []))
        keep = "off" if d.get("records") is None else f"set to keep the last {d['records']:,} records per partition"
        return f"Retention {keep}: {_plural(deleted, 'record')} deleted in whole segments."
    if kind == "consumer_speed_set":
        return f"{d.get('member')} in {d.get('group')} now reads {d.get('speed')} records per tick."
    if kind == "offsets_reset":
        return f"{d.get('group')} offsets reset to {d.get('to')}."
    if kind == "scene_loaded":
        p = d["params"]
        return (f"New scene: topic {p.get('topic', 'orders')}, {p.get('partitions')} partitions on "
                f"{p.get('brokers')} brokers, replication factor {p.get('replication_factor')}.")
    return kind.replace("_", " ") + "."


def state_json(state: ClusterState) -> dict[str, Any]:
    doc = sim.to_json(state)
    doc["derived"] = {
        "partitions": sim.partition_summaries(state),
        "groups": sim.group_summaries(state),
        "producers": sim.producer_summaries(state),
        "totals": sim.totals(state),
    }
    return doc


def join_group_command(state: ClusterState, body: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "group_join", "group": "class", "member": name}


JOIN_GROUP_ROUND = RoundSpec(
    kind="join_group",
    title="Join the class consumer group",
    instructions="join the consumer group 'class' as yourself and see which partitions you own.",
    student_command="join_my_group",
    to_command=join_group_command,
    entry_key="member",
    input_label=None,
)


def round_panel(state: ClusterState, current: dict[str, Any] | None) -> str:
    group = next((g for g in sim.group_summaries(state) if g["name"] == "class"), None)
    return fragments.render_tight("logpartitions/_round.html", {"round": current, "group": group,
                                                               "entries": len((current or {}).get("entries", []))})


def my_entry(state: ClusterState, entry: dict[str, Any]) -> str:
    group = next((g for g in sim.group_summaries(state) if g["name"] == "class"), None)
    me = next((m for m in (group or {}).get("members", []) if m["name"] == entry["entry"]), None)
    return fragments.render_tight("logpartitions/_my_entry.html", {"entry": entry, "me": me, "group": group,
                                                                  "partitions": len(state.partitions)})


CONCEPT = Concept(
    slug="log-partitions",
    title="Log partitions",
    blurb="A Kafka-style log: partitions, replicas, consumer groups, offsets and lag. Break a broker and watch.",
    initial_state=sim.initial_state,
    decide=decide,
    evolve=sim.evolve,
    to_json=sim.to_json,
    from_json=sim.from_json,
    rejected=sim.Rejected,
    page_template="logpartitions/page.html",
    page_context=page_context,
    render_full=render_full,
    render_update=render_update,
    narrate=narrate,
    state_json=state_json,
    ticks=True,
    rounds=(JOIN_GROUP_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
)
