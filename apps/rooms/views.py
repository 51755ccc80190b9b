"""Pages and JSON for rooms. The live part happens over the WebSocket (consumers.py)."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .consumers import role_for
from .models import Room, RoomEvent
from .registry import COMING, REGISTRY, get
from .services import normalise_code, room_create, room_fork, room_narration, room_state, room_view

MAX_EVENTS_PAGE = 5000


def _remember_presenter(request: HttpRequest, room: Room) -> None:
    rooms = [c for c in request.session.get("presenter_rooms", []) if c != room.code]
    request.session["presenter_rooms"] = (rooms + [room.code])[-50:]  # the cookie stays small


def _room_or_404(code: str) -> Room:
    room = Room.objects.filter(code=normalise_code(code)).first()
    if room is None:
        raise Http404("No room with that code.")
    return room


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"concepts": list(REGISTRY.values()), "coming": COMING,
                                         "error": request.GET.get("error", "")[:100]})


@require_POST
def room_new(request: HttpRequest, concept: str) -> HttpResponse:
    if concept not in REGISTRY:
        raise Http404("No such concept.")
    room, _key = room_create(concept=concept)
    _remember_presenter(request, room)
    return redirect("room", code=room.code)


@require_GET
def join(request: HttpRequest) -> HttpResponse:
    code = normalise_code(request.GET.get("code", ""))
    if not code or not Room.objects.filter(code=code).exists():
        return redirect("/?error=no-room")
    return redirect("room", code=code)


@require_GET
def room_page(request: HttpRequest, code: str) -> HttpResponse:
    room = _room_or_404(code)
    if room.code != code:
        return redirect("room", code=room.code)
    concept = get(room.concept)
    role = role_for(request.session, room.code)
    view = room_view(room, role)
    state = room_state(room)
    ctx = {
        "room": room,
        "view": view,
        "concept": concept,
        "role": role,
        "narration": room_narration(room),
        **concept.page_context(state, view),
    }
    return render(request, concept.page_template, ctx)


@require_GET
def room_events_json(request: HttpRequest, code: str) -> JsonResponse:
    """The room's event log, oldest first: ``?after=<seq>`` pages through a long one."""
    room = _room_or_404(code)
    try:
        after = max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        after = 0
    rows = list(RoomEvent.objects.filter(room=room, seq__gt=after).order_by("seq")[:MAX_EVENTS_PAGE])
    return JsonResponse({
        "room": room.code,
        "concept": room.concept,
        "seq": room.seq,
        "events": [e.as_json() for e in rows],
        "more": bool(rows) and rows[-1].seq < room.seq,
    })


@require_GET
def room_state_json(request: HttpRequest, code: str) -> JsonResponse:
    room = _room_or_404(code)
    concept = get(room.concept)
    return JsonResponse({
        "room": room.code,
        "concept": room.concept,
        "seq": room.seq,
        "position": room.position,
        "clock": {"playing": room.playing, "speed": room.speed},
        "forked_from": None if room.parent_id is None else {"code": room.parent.code, "seq": room.parent_seq},  # type: ignore[union-attr]
        "state": concept.state_json(room_state(room)),
    })


@require_POST
def room_fork_view(request: HttpRequest, code: str) -> HttpResponse:
    room = _room_or_404(code)
    new, _key = room_fork(room=room)
    _remember_presenter(request, new)
    return redirect("room", code=new.code)
