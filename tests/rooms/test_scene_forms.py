"""The New scene forms start from the room's current scene: they are drawn from the state and
redrawn with it, so a scene loaded by a lesson (or another presenter's window) shows in them."""
from __future__ import annotations

import json
import re

import pytest

from apps.rooms.frames import render_broadcast

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


def test_retention_has_a_control_on_the_log_page_that_works():
    """set_retention used to crash its narration and had no control: the Brokers and faults group
    has one, drawn from the state, and Topic settings says what is kept."""
    from apps.rooms.models import Room
    from apps.rooms.services import room_narration

    client, code = created_as_presenter("log-partitions")
    page = client.get(f"/r/{code}/").content.decode()
    assert '<input type="hidden" name="type" value="set_retention">' in page
    assert "off: keeps all" in page
    room = Room.objects.get(code=code)
    apply_command(room, {"type": "produce_burst", "producer": "producer", "count": 3000, "pattern": "order-{i}"})
    for _ in range(3):
        apply_command(room, {"type": "step"})
    frame = json.loads(render_broadcast(apply_command(room, {"type": "set_retention", "records": "5"})))["content"]
    assert 'name="records" type="number" min="1" max="1000000" value="5"' in frame and "last 5 records" in frame
    line = room_narration(Room.objects.get(code=code))[-1][1]
    deleted = re.search(r": ([\d,]+) records? deleted in whole segments", line)
    assert line.startswith("Retention set to keep the last 5 records per partition:") and deleted, line
    assert int(deleted.group(1).replace(",", "")) > 0, line
    frame = json.loads(render_broadcast(apply_command(room, {"type": "set_retention", "records": ""})))["content"]
    assert "off: keeps all" in frame
