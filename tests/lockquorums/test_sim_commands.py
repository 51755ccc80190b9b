"""Bad commands are refused with a sentence the sender can act on."""
from __future__ import annotations

import pytest

from apps.lockquorums.sim import Rejected, decide, evolve, initial_state

from .conftest import fold


@pytest.mark.parametrize("cmd,match", [
    ({"type": "explode"}, "Unknown command"),
    ({}, "Unknown command"),
    ({"type": "acquire", "client": "Z"}, "no client called 'Z'"),
    ({"type": "acquire", "client": 5}, "no client called"),
    ({"type": "node_crash", "node": "Q"}, "no lock node called 'Q'"),
    ({"type": "link_cut", "client": "C1", "node": "Q"}, "no lock node"),
    ({"type": "clock_jump", "node": "A", "ms": -5}, "clock jump must be from 1"),
    ({"type": "clock_jump", "node": "A", "ms": "lots"}, "whole number"),
    ({"type": "clock_jump", "node": "A", "ms": True}, "whole number"),
    ({"type": "tick", "dt_ms": 0}, "tick must be from 1"),
    ({"type": "client_pause", "client": "C1", "ms": 1.5}, "whole number"),
    ({"type": "node_restart", "node": "A"}, "is up"),
    ({"type": "release", "client": "C1"}, "no lock to release"),
    ({"type": "write", "client": "C1"}, "does not believe it holds"),
    ({"type": "link_heal", "client": "C1", "node": "A"}, "already up"),
    ({"type": "set_fencing", "on": "yes"}, "true or false"),
    ({"type": "add_client", "name": "C1"}, "already a client"),
])
def test_rejected_with_a_clear_message(cmd, match):
    with pytest.raises(Rejected, match=match):
        decide(initial_state(), cmd)


def test_holding_client_cannot_acquire_again_and_paused_client_cannot_act():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"})
    with pytest.raises(Rejected, match="already holds"):
        decide(s, {"type": "acquire", "client": "C1"})
    s = fold(s, {"type": "client_pause", "client": "C1", "ms": 100})
    for t in ("acquire", "release", "write"):
        with pytest.raises(Rejected, match="paused|does not believe"):
            decide(s, {"type": t, "client": "C1"})


def test_crash_twice_and_consensus_disk_loss_are_rejected():
    s = fold(initial_state(), {"type": "node_crash", "node": "A"})
    with pytest.raises(Rejected, match="already down"):
        decide(s, {"type": "node_crash", "node": "A"})
    c = fold(initial_state({"mode": "consensus"}), {"type": "node_crash", "node": "A"})
    with pytest.raises(Rejected, match="fsync"):
        decide(c, {"type": "node_restart", "node": "A", "persistence": False})


@pytest.mark.parametrize("params", [{"nodes": 4}, {"mode": "paxos"}])
def test_bad_initial_params(params):
    with pytest.raises(Rejected):
        initial_state(params)


def test_add_client_and_latency():
    s = fold(initial_state(), {"type": "add_client"}, {"type": "set_latency", "client": "C3", "node": "A", "ms": 40})
    assert s.client("C3").status == "idle" and s.node("A").rtt("C3") == 40 and s.node("B").rtt("C3") == 3
