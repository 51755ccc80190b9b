"""Pages and JSON of a room, through the Django test client."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from django.test import Client

from apps.rooms import views
from apps.rooms.models import Room
from apps.rooms.registry import COMING, REGISTRY

from .conftest import ALICE, OWN_KEY

pytestmark = pytest.mark.django_db

MARKUP = '"><svg onload=alert(1)>'


def room_code(response) -> str:
    match = re.fullmatch(r"/r/([A-Z0-9]+)/", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def session_rooms(client: Client) -> list[str]:
    return client.session.get("presenter_rooms", [])


# -- home ------------------------------------------------------------------------------------

def test_home_lists_the_hash_ring_as_live(client):
    html = client.get("/").content.decode()
    assert 'class="card live" id="card-hashring"' in html


def test_home_lists_the_other_concepts_as_coming(client):
    html = client.get("/").content.decode()
    for slug, _title, _blurb in COMING:
        assert f'class="card coming" id="card-{slug}"' in html
        assert f'class="card live" id="card-{slug}"' not in html


def test_home_lists_every_registered_concept_as_live(client):
    html = client.get("/").content.decode()
    for slug in REGISTRY:
        assert f'class="card live" id="card-{slug}"' in html
        assert f'class="card coming" id="card-{slug}"' not in html


def test_home_sends_a_content_security_policy(client):
    assert "script-src 'self'" in client.get("/")["Content-Security-Policy"]


# -- creating and opening a room ---------------------------------------------------------------

def test_room_new_redirects_to_the_room(client):
    response = client.post("/new/hashring/")
    assert response.status_code == 302
    assert Room.objects.filter(code=room_code(response), concept="hashring").exists()


def test_room_new_makes_the_creator_presenter(client):
    code = room_code(client.post("/new/hashring/"))
    assert session_rooms(client) == [code]


def test_room_new_refuses_get(client):
    assert client.get("/new/hashring/").status_code == 405


def test_room_new_refuses_an_unknown_concept(client):
    assert client.post("/new/nosuch/").status_code == 404


def test_room_new_needs_a_csrf_token():
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.post("/new/hashring/").status_code == 403


def test_room_page_renders_the_ring(client):
    code = room_code(client.post("/new/hashring/"))
    response = client.get(f"/r/{code}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<svg id="ring"' in html
    assert f'hx-ws:connect="/ws/r/{code}/?seq=1"' in html  # the seq it shows: no full state sent again


def test_room_page_shows_the_presenter_role_to_its_creator(client):
    code = room_code(client.post("/new/hashring/"))
    assert 'data-role="presenter"' in client.get(f"/r/{code}/").content.decode()


def test_room_page_shows_the_participant_role_to_others(room):
    assert 'data-role="participant"' in Client().get(f"/r/{room.code}/").content.decode()


def test_room_page_is_404_for_an_unknown_room(client):
    assert client.get("/r/NOROOM/").status_code == 404


def test_room_page_redirects_a_lower_case_code(client, room):
    response = client.get(f"/r/{room.code.lower()}/")
    assert (response.status_code, response["Location"]) == (302, f"/r/{room.code}/")


# -- joining ---------------------------------------------------------------------------------

def test_join_with_a_bad_code_redirects_home_with_an_error(client):
    response = client.get("/join/", {"code": "NOROOM"})
    assert (response.status_code, response["Location"]) == (302, "/?error=no-room")


def test_join_error_is_shown_on_the_home_page(client):
    html = client.get("/join/", {"code": "NOROOM"}, follow=True).content.decode()
    assert "No room has that code" in html


def test_join_with_an_empty_code_redirects_home_with_an_error(client):
    assert client.get("/join/", {"code": "  "})["Location"] == "/?error=no-room"


def test_join_with_a_good_code_redirects_to_the_room(client, room):
    response = client.get("/join/", {"code": room.code})
    assert response["Location"] == f"/r/{room.code}/"


def test_join_accepts_a_lower_case_code_with_spaces(client, room):
    typed = f" {room.code[:3].lower()} {room.code[3:].lower()} "
    assert client.get("/join/", {"code": typed})["Location"] == f"/r/{room.code}/"


def test_join_does_not_make_a_presenter(client, room):
    client.get("/join/", {"code": room.code}, follow=True)
    assert session_rooms(client) == []


# -- events.json -----------------------------------------------------------------------------

def test_room_events_json_has_the_documented_shape(client, room, apply):
    apply(room, OWN_KEY)
    apply(room, {"type": "add_my_key", "key": "alice"}, actor=ALICE, command_id="cmd-1")
    doc = client.get(f"/r/{room.code}/events.json").json()
    assert set(doc) == {"room", "concept", "seq", "events", "more"}
    assert (doc["room"], doc["concept"], doc["seq"], doc["more"]) == (room.code, "hashring", 4, False)
    assert [set(e) for e in doc["events"]] == [{"seq", "kind", "data", "command_id", "actor", "narration", "created"}] * 4


def test_room_events_json_lists_the_log_in_order(client, room, apply):
    apply(room, OWN_KEY, command_id="open-1")
    apply(room, {"type": "add_my_key", "key": "alice"}, actor=ALICE, command_id="cmd-1")
    events = client.get(f"/r/{room.code}/events.json").json()["events"]
    assert [(e["seq"], e["kind"], e["actor"], e["command_id"]) for e in events] == [
        (1, "room_created", "system", None),
        (2, "round_opened", "presenter", "open-1"),
        (3, "key_added", "participant", "cmd-1"),
        (4, "round_entry", "participant", None),
    ]
    assert events[2]["data"] == {"key": "alice"}
    assert events[3]["data"] == {"pid": ALICE.pid, "name": "Alice", "entry": "alice"}
    assert events[2]["narration"].startswith("Added key alice")
    assert events[3]["narration"] == "Alice took part: alice."
    assert datetime.fromisoformat(events[2]["created"])


def test_room_events_json_pages_with_after(client, room, apply):
    for name in ("E", "F", "G"):
        apply(room, {"type": "add_node", "name": name})
    events = client.get(f"/r/{room.code}/events.json", {"after": 2}).json()["events"]
    assert [e["seq"] for e in events] == [3, 4]


def test_room_events_json_says_when_there_is_more(client, room, apply, monkeypatch):
    monkeypatch.setattr(views, "MAX_EVENTS_PAGE", 2)
    for name in ("E", "F", "G"):
        apply(room, {"type": "add_node", "name": name})
    first = client.get(f"/r/{room.code}/events.json").json()
    rest = client.get(f"/r/{room.code}/events.json", {"after": first["events"][-1]["seq"]}).json()
    assert ([e["seq"] for e in first["events"]], first["more"]) == ([1, 2], True)
    assert ([e["seq"] for e in rest["events"]], rest["more"]) == ([3, 4], False)


def test_room_events_json_ignores_a_bad_after(client, room):
    assert len(client.get(f"/r/{room.code}/events.json", {"after": "x"}).json()["events"]) == 1


def test_room_events_json_after_the_end_is_empty(client, room):
    doc = client.get(f"/r/{room.code}/events.json", {"after": 99}).json()
    assert (doc["events"], doc["more"]) == ([], False)


def test_room_events_json_accepts_a_lower_case_code(client, room):
    assert client.get(f"/r/{room.code.lower()}/events.json").json()["room"] == room.code


def test_room_events_json_is_404_for_an_unknown_room(client):
    assert client.get("/r/NOROOM/events.json").status_code == 404


# -- state.json ------------------------------------------------------------------------------

def test_room_state_json_has_the_documented_shape(client, room):
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert {"room", "concept", "seq", "position", "clock", "state"} <= set(doc)
    assert (doc["room"], doc["concept"], doc["seq"], doc["position"]) == (room.code, "hashring", 1, 1)
    assert doc["clock"] == {"playing": False, "speed": 1.0}


def test_room_state_json_holds_the_ring_and_what_follows_from_it(client, room):
    state = client.get(f"/r/{room.code}/state.json").json()["state"]
    assert {"nodes", "keys", "replicas", "derived"} <= set(state)
    assert [n["name"] for n in state["nodes"]] == ["A", "B", "C", "D"]
    assert {"counts", "shares", "load", "lookup"} <= set(state["derived"])
    assert sum(state["derived"]["counts"].values()) == len(state["keys"]) == 12


def test_room_state_json_follows_commands(client, room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "lookup", "key": "user1"})
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert (doc["seq"], doc["position"]) == (3, 3)
    assert "E" in doc["state"]["derived"]["counts"]
    assert doc["state"]["derived"]["lookup"]["key"] == "user1"


def test_room_state_json_shows_a_rewound_position(client, room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "step_back"})
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert (doc["seq"], doc["position"]) == (3, 1)
    assert "E" not in [n["name"] for n in doc["state"]["nodes"]]


def test_room_state_json_is_404_for_an_unknown_room(client):
    assert client.get("/r/NOROOM/state.json").status_code == 404


# -- fork ------------------------------------------------------------------------------------

def test_room_fork_view_creates_a_new_room(client, room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    response = client.post(f"/r/{room.code}/fork/")
    code = room_code(response)
    assert code != room.code
    fork = Room.objects.get(code=code)
    assert (fork.parent_id, fork.parent_seq) == (room.pk, 2)


def test_room_fork_view_makes_the_requester_presenter_of_the_fork(client, room):
    code = room_code(client.post(f"/r/{room.code}/fork/"))
    assert session_rooms(client) == [code]
    assert 'data-role="presenter"' in client.get(f"/r/{code}/").content.decode()


def test_room_fork_view_does_not_make_the_requester_presenter_of_the_parent(client, room):
    client.post(f"/r/{room.code}/fork/")
    assert room.code not in session_rooms(client)


def test_room_fork_view_state_json_names_the_parent(client, room):
    code = room_code(client.post(f"/r/{room.code}/fork/"))
    assert client.get(f"/r/{code}/state.json").json()["forked_from"] == {"code": room.code, "seq": 1}


def test_room_fork_view_refuses_get(client, room):
    assert client.get(f"/r/{room.code}/fork/").status_code == 405


def test_room_fork_view_is_404_for_an_unknown_room(client):
    assert client.post("/r/NOROOM/fork/").status_code == 404


# -- escaping --------------------------------------------------------------------------------

def test_room_page_escapes_markup_in_a_key_name(client, room, apply):
    apply(room, OWN_KEY)
    apply(room, {"type": "add_my_key", "key": MARKUP}, actor=ALICE)  # in the round panel, the marks, the narration
    apply(room, {"type": "lookup", "key": MARKUP})
    html = client.get(f"/r/{room.code}/").content.decode()
    assert "<svg onload" not in html
    assert "&lt;svg onload" in html


def test_room_page_escapes_markup_in_a_node_name(client, room, apply):
    apply(room, {"type": "add_node", "name": MARKUP})
    html = client.get(f"/r/{room.code}/").content.decode()
    assert "<svg onload" not in html
    assert "&lt;svg onload" in html


def test_room_state_json_keeps_a_name_with_markup_as_data(client, room, apply):
    apply(room, {"type": "add_node", "name": MARKUP})
    response = client.get(f"/r/{room.code}/state.json")
    assert response["Content-Type"] == "application/json"
    assert MARKUP in [n["name"] for n in response.json()["state"]["nodes"]]
