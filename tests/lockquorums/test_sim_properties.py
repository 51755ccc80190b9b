"""Without faults, at most one client holds a valid lock at any logical time."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from apps.lockquorums.sim import Rejected, decide, evolve, initial_state, to_json

CLIENTS = ["C1", "C2", "C3"]
step = st.one_of(
    st.builds(lambda c, s: {"type": "acquire", "client": c, "_seed": s}, st.sampled_from(CLIENTS), st.integers(0, 999)),
    st.builds(lambda c: {"type": "release", "client": c}, st.sampled_from(CLIENTS)),
    st.builds(lambda dt: {"type": "tick", "dt_ms": dt}, st.integers(1, 12_000)),
)


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(["single", "redlock", "consensus"]), n=st.sampled_from([3, 5, 7]),
       ttl=st.integers(200, 10_000), steps=st.lists(step, max_size=25))
def test_at_most_one_valid_holder_without_faults(mode, n, ttl, steps):
    s = initial_state({"mode": mode, "nodes": n, "ttl_ms": ttl, "clients": CLIENTS})
    log = []
    for cmd in steps:
        try:
            events = decide(s, cmd)
        except Rejected:
            continue
        for ev in events:
            s = evolve(s, ev)
            log.append(ev)
            assert len(s.holders()) <= 1, (cmd, s.holders())
    replayed = initial_state({"mode": mode, "nodes": n, "ttl_ms": ttl, "clients": CLIENTS})
    for ev in log:
        replayed = evolve(replayed, ev)
    assert to_json(replayed) == to_json(s)


def test_same_seed_for_two_clients_gives_different_values():
    """Regression: with one shared seed both clients drew the same "random" value, and C2's
    compare-and-delete after a failed try removed C1's key (found by the property above)."""
    s = initial_state({"mode": "single", "ttl_ms": 200})
    for cmd in ({"type": "acquire", "client": "C1", "_seed": 0}, {"type": "acquire", "client": "C2", "_seed": 0}):
        for ev in decide(s, cmd):
            s = evolve(s, ev)
            assert len(s.holders()) <= 1
    values = [c.value for c in s.clients if c.value]
    assert len(set(values)) == len(values)
