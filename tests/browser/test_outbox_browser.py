"""Nothing a person clicks is lost: a command made while the server is down is sent, once,
when the connection comes back."""
from __future__ import annotations

import time

from playwright.sync_api import TimeoutError as PlaywrightTimeout


def test_a_command_made_during_an_outage_lands_after_the_restart(presenter, daphne_server):
    code = presenter.create_room()
    before = presenter.state(code)["seq"]
    daphne_server.stop()
    presenter.page.locator('body[data-conn="closed"]').wait_for(state="attached")
    presenter.submit("add_node", name="Zed")
    assert "will be sent" in presenter.page.locator("#flash").inner_text()
    assert presenter.page.evaluate("window.distviz.pending()") == 1
    daphne_server.start()
    presenter.wait_live(timeout=30_000)
    presenter.page.locator("#nodes li", has_text="Zed").wait_for()
    state = presenter.state(code)
    assert [n["name"] for n in state["state"]["nodes"]].count("Zed") == 1
    assert state["seq"] == before + 1  # applied exactly once
    assert presenter.page.evaluate("window.distviz.pending()") == 0


REFUSED_BURST = 35  # commands sent at once: the first ones go through, the rest are told to slow down


def test_nothing_the_server_refused_is_replayed_after_a_restart(presenter, daphne_server):
    """Every refusal (slow down, too large, not understood, not allowed) names its command, and
    the page drops it from its outbox: after a restart and a reconnect nothing refused is applied.
    (Before refusals carried their ids, 17 of 35 refused commands were applied on the next
    reconnect without anyone touching anything.)"""
    code = presenter.create_room()
    page = presenter.page
    sent = page.evaluate("""n => {
        const keys = [];
        for (let i = 0; i < n; i++) { keys.push('burst' + i); window.distviz.send({ type: 'add_key', key: 'burst' + i }); }
        window.distviz.send({ type: 'add_key', key: 'huge' + 'x'.repeat(20000) });   // too large
        window.distviz.send({ type: 'launch_rockets' });                             // not understood
        window.distviz.send({ type: 'rewind', to_seq: 1.5 });                        // a bad value
        return keys;
    }""", REFUSED_BURST)
    # Every command answered, applied or refused: the outbox empties. (Without ids on refusals it
    # never does; the test goes on to show what that costs.)
    try:
        page.wait_for_function("() => window.distviz.pending() === 0", timeout=15_000)
    except PlaywrightTimeout:
        pass
    held = page.evaluate("window.distviz.pending()")
    applied = [k for k in presenter.state(code)["state"]["keys"] if k.startswith("burst")]
    assert 0 < len(applied) < len(sent)  # some were refused (slow down)
    seq_before = presenter.state(code)["seq"]

    daphne_server.restart()
    presenter.wait_live(timeout=30_000)
    # A marker after the reconnect: the page resends what it still holds first, so once the
    # marker is in, anything replayed would be in too.
    page.evaluate("window.distviz.send({ type: 'add_key', key: 'marker' })")
    deadline = time.monotonic() + 15
    while "marker" not in (state := presenter.state(code))["state"]["keys"]:
        assert time.monotonic() < deadline, "the marker never landed"
        page.wait_for_timeout(50)  # polling the server, not waiting for it
    assert state["seq"] == seq_before + 1, f"{state['seq'] - seq_before - 1} refused commands were applied on the reconnect ({held} held)"
    assert [k for k in state["state"]["keys"] if k.startswith("burst")] == applied
    assert "marker" in state["state"]["keys"]
