"""Nothing a person clicks is lost: a command made while the server is down is sent, once,
when the connection comes back."""
from __future__ import annotations


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
