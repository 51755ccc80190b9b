"""The New scene forms start from the room's current scene: they are drawn from the state and
redrawn with it, so a scene loaded by a lesson (or another presenter's window) shows in them."""
from __future__ import annotations

import json
import re

import pytest

from apps.rooms.consumers import render_broadcast

from .conftest import apply_command, created_as_presenter

pytestmark = pytest.mark.django_db


def field(html: str, panel: str, name: str) -> str:
    """The value a number field of the panel shows (or the selected option of a select)."""
    part = html[html.index(f'id="{panel}"'):]
    part = part[: part.index("</form>")]
    number = re.search(rf'name="{name}" type="number"[^>]*value="([^"]*)"', part)
    if number:
        return number.group(1)
    select = re.search(rf'name="{name}">(.*?)</select>', part, re.S)
    assert select, f"no field {name} in {panel}"
    chosen = re.search(r'<option value="([^"]*)" selected', select.group(1))
    assert chosen, f"nothing selected in {name}"
    return chosen.group(1)


def test_the_log_scene_form_follows_a_new_scene():
    client, code = created_as_presenter("log-partitions")
    page = client.get(f"/r/{code}/").content.decode()
    assert (field(page, "lp-scene", "partitions"), field(page, "lp-scene", "brokers")) == ("3", "3")
    from apps.rooms.models import Room

    room = Room.objects.get(code=code)
    frame = json.loads(render_broadcast(apply_command(room, {"type": "load_scene", "partitions": 5, "brokers": 4,
                                                              "replication_factor": 3})))["content"]
    assert (field(frame, "lp-scene", "partitions"), field(frame, "lp-scene", "brokers"),
            field(frame, "lp-scene", "replication_factor")) == ("5", "4", "3")
    page = client.get(f"/r/{code}/").content.decode()
    assert field(page, "lp-scene", "partitions") == "5"


def test_the_lock_scene_form_follows_a_new_scene():
    client, code = created_as_presenter("lock-quorums")
    page = client.get(f"/r/{code}/").content.decode()
    assert (field(page, "lq-scene", "mode"), field(page, "lq-scene", "nodes"), field(page, "lq-scene", "clients")) == ("redlock", "5", "2")
    assert 'name="fencing" value="true" checked' not in page
    from apps.rooms.models import Room

    room = Room.objects.get(code=code)
    frame = json.loads(render_broadcast(apply_command(room, {"type": "load_scene", "mode": "redlock", "nodes": 7,
                                                              "clients": 3, "fencing": True})))["content"]
    assert (field(frame, "lq-scene", "nodes"), field(frame, "lq-scene", "clients")) == ("7", "3")
    assert 'name="fencing" value="true" checked' in frame
