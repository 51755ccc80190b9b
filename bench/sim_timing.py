"""Part 1: the pure simulation. A membership change on 50 nodes x 160 vnodes and 100,000 keys.

``evolve`` of ``node_added`` / ``node_removed`` builds the new vnode table, finds every key's
owner in the new state and the moved mask against the old one (``_with_change``), plus the
``hash % N`` comparison. Each run starts from the same warm base state (its own owners already
derived, as they are in the server's state cache) and adds or removes a different node, so the
new node's vnode positions are hashed too (``vnode_positions`` is an lru_cache).
"""
from __future__ import annotations

import time
from typing import Any

from common import median, percentile

NODES = 50
VNODES = 160
KEYS = 100_000
RUNS = 20
BUDGET_MS = 50.0


def build_base() -> tuple[Any, float]:
    from apps.hashring.sim import evolve, initial_state

    t0 = time.perf_counter()
    names = [f"N{i:02d}" for i in range(NODES)]
    state = initial_state({"nodes": names, "vnodes": VNODES, "keys": []})
    state = evolve(state, {"kind": "keys_added", "data": {"seed": "bench", "count": KEYS}})
    state.owners  # noqa: B018 - derive once, as the server's cached state has
    state.counts  # noqa: B018
    return state, time.perf_counter() - t0


def _time(base: Any, events: list[dict[str, Any]]) -> tuple[list[float], list[int]]:
    from apps.hashring.sim import evolve

    times, moved = [], []
    for ev in events:
        t0 = time.perf_counter()
        after = evolve(base, ev)
        after.owners  # noqa: B018 - already derived by _with_change; make sure it is in the timing
        times.append(time.perf_counter() - t0)
        moved.append(after.last_change.moved)
    return times, moved


def run() -> dict[str, Any]:
    from apps.hashring.sim import evolve, from_json, to_json

    base, build_s = build_base()
    assert len(base.keys) == KEYS and len(base.table) == NODES * VNODES
    print(f"  base state: {NODES} nodes x {VNODES} vnodes = {len(base.table):,} vnodes, {len(base.keys):,} keys "
          f"(built in {build_s * 1000:.0f} ms)")
    # Warm up numpy and the code paths once.
    _time(base, [{"kind": "node_added", "data": {"name": "WARM", "vnodes": VNODES}}])

    cases = {
        "node_added": [{"kind": "node_added", "data": {"name": f"X{i}", "vnodes": VNODES}} for i in range(RUNS)],
        "node_removed": [{"kind": "node_removed", "data": {"name": f"N{i:02d}"}} for i in range(RUNS)],
        "vnodes_set (one node)": [{"kind": "vnodes_set", "data": {"name": f"N{i:02d}", "vnodes": VNODES + 40}}
                                  for i in range(RUNS)],
    }
    results: dict[str, Any] = {}
    print(f"  {'event':<24}{'runs':>5}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'keys moved (median)':>21}")
    for name, events in cases.items():
        times, moved = _time(base, events)
        ms = [t * 1000 for t in times]
        results[name] = {"median_ms": median(ms), "p95_ms": percentile(ms, 95), "max_ms": max(ms)}
        print(f"  {name:<24}{len(ms):>5}{median(ms):>11.2f}{percentile(ms, 95):>9.2f}{max(ms):>9.2f}"
              f"{int(median(moved)):>21,}")

    # Cold: a state just loaded from JSON (a new process, or a snapshot): nothing derived yet,
    # so the 100,000 keys are hashed again before the change. Information, not the budget.
    doc = to_json(base)
    cold = []
    for i in range(5):
        fresh = from_json(doc)
        t0 = time.perf_counter()
        after = evolve(fresh, {"kind": "node_added", "data": {"name": f"C{i}", "vnodes": VNODES}})
        after.owners  # noqa: B018
        cold.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    from_json(doc)
    load_ms = (time.perf_counter() - t0) * 1000
    results["cold node_added"] = {"median_ms": median(cold), "p95_ms": percentile(cold, 95), "max_ms": max(cold)}
    print(f"  {'node_added, cold state':<24}{len(cold):>5}{median(cold):>11.2f}{percentile(cold, 95):>9.2f}"
          f"{max(cold):>9.2f}   (from_json first: +{load_ms:.1f} ms; info only)")
    return results
