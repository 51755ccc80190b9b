"""Pages and JSON for rooms. The live part happens over the WebSocket (consumers.py)."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

import hmac
import secrets

from django.views.decorators.cache import never_cache

from .consumers import participant_name, role_for
from .models import Room, RoomEvent
from .panels import lesson_context
from .presence import presence_count
from .qr import qr_svg
from .registry import COMING, REGISTRY, get
from .services import hash_key, normalise_code, room_create, room_fork, room_narration, room_state, room_view

MAX_NAME = 24

MAX_EVENTS_PAGE = 5000


def _remember_presenter(request: HttpRequest, room: Room) -> None:
    rooms = [c for c in request.session.get("presenter_rooms", []) if c != room.code]
    request.session["presenter_rooms"] = (rooms + [room.code])[-50:]  # the cookie stays small


def _ensure_pid(request: HttpRequest) -> str:
    """A random id for this browser, so a student takes part in a round once."""
    pid = request.session.get("pid")
    if not pid:
        pid = request.session["pid"] = secrets.token_hex(8)
    return pid


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
@never_cache
def room_page(request: HttpRequest, code: str) -> HttpResponse:
    room = _room_or_404(code)
    if room.code != code:
        return redirect("room", code=room.code)
    concept = get(room.concept)
    _ensure_pid(request)
    role = role_for(request.session, room.code)
    if role == "participant" and request.GET.get("as") == "viewer":
        role = "viewer"
    view = room_view(room, role)
    state = room_state(room)
    join_url = request.build_absolute_uri(f"/r/{room.code}/")
    ctx = {
        "room": room,
        "view": view,
        "concept": concept,
        "role": role,
        "narration": room_narration(room),
        "join_url": join_url,
        "join_qr": qr_svg(join_url, f"QR code to join room {room.code}"),
        "my_name": participant_name(request.session, room.code),
        "named": room.code in request.session.get("names", {}),
        "name_error": request.GET.get("name_error", "")[:80],
        "round_spec": concept.round_spec(room.round["kind"]) if room.round else None,
        "round_html": concept.round_panel(state, room.round) if concept.round_panel else "",
        "round_marks": concept.round_marks(state, room.round) if concept.round_marks else "",
        "ws_query": "?as=viewer" if role == "viewer" else "",
        "presence_count": presence_count(room.code),
        **lesson_context(room, concept),
        **concept.page_context(state, view),
    }
    return render(request, concept.page_template, ctx)


@require_POST
def room_name(request: HttpRequest, code: str) -> HttpResponse:
    """A student says what to call them (their key's name in a round)."""
    room = _room_or_404(code)
    name = " ".join(request.POST.get("name", "").split())
    if not name or len(name) > MAX_NAME or not name.isprintable() or "#" in name:
        return redirect(f"/r/{room.code}/?name_error=Give+a+name+of+1+to+{MAX_NAME}+characters+without+%23.")
    names = dict(request.session.get("names", {}))
    names[room.code] = name
    request.session["names"] = dict(list(names.items())[-20:])
    _ensure_pid(request)
    return redirect("room", code=room.code)


@require_POST
@never_cache
def room_copresenter(request: HttpRequest, code: str) -> HttpResponse:
    """A fresh co-presenter link, shown once: a new key replaces (and revokes) the last one."""
    room = _room_or_404(code)
    if role_for(request.session, room.code) != "presenter":
        return HttpResponse("Only the presenter can hand out a co-presenter link.", status=403)
    key = secrets.token_urlsafe(24)  # 192 bits
    Room.objects.filter(pk=room.pk).update(presenter_key_hash=hash_key(key))
    link = request.build_absolute_uri(f"/r/{room.code}/claim/") + f"#{key}"
    response = render(request, "rooms/copresenter.html", {"room": room, "link": link})
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
def room_claim(request: HttpRequest, code: str) -> HttpResponse:
    """Exchange a co-presenter key for this browser's presenter session.

    The key travels in the URL's fragment (never sent to the server, so never in a log) and is
    posted from the page by ``claim.js``, which also removes it from the address bar.
    """
    room = _room_or_404(code)
    if request.method == "POST":
        key = request.POST.get("key", "")
        ok = bool(key) and bool(room.presenter_key_hash) and hmac.compare_digest(hash_key(key), room.presenter_key_hash)
        if not ok:
            return render(request, "rooms/claim.html", {"room": room, "error": "That co-presenter link is not valid (any more)."}, status=403)
        _remember_presenter(request, room)
        return redirect("room", code=room.code)
    return render(request, "rooms/claim.html", {"room": room})


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
