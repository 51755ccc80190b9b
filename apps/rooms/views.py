"""Pages and JSON for rooms. The live part happens over the WebSocket (consumers.py)."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

import hmac
import secrets
from functools import lru_cache

from django.views.decorators.cache import never_cache

from .frames import page_picture
from .models import Room, RoomEvent
from .panels import lesson_context, shown_round
from .personal import my_panels
from .presence import presence_count
from .qr import qr_svg
from .registry import COMING, REGISTRY, get
from .roles import copresenter_generation, participant_name, role_for
from apps.common.sim.validate import text_problem

from .services import hash_key, normalise_code, room_create, room_fork, room_narration, room_state, room_view

# A room's join QR code depends only on its URL: drawn once, not on every page view (6.5 ms each;
# a class of 300 joining at once drew it 300 times).
cached_qr_svg = lru_cache(maxsize=512)(qr_svg)

MAX_NAME = 24

MAX_EVENTS_PAGE = 5000


def _remember_presenter(request: HttpRequest, room: Room) -> None:
    rooms = [c for c in request.session.get("presenter_rooms", []) if c != room.code]
    request.session["presenter_rooms"] = (rooms + [room.code])[-50:]  # the cookie stays small


def _remember_claim(request: HttpRequest, code: str, generation: int) -> None:
    """This browser claimed the room's co-presenter link of this generation: it presents while
    no newer link has been issued (``role_for``)."""
    claimed = request.session.get("copresenter", {})
    claimed = {c: g for c, g in (claimed.items() if isinstance(claimed, dict) else []) if c != code}
    claimed[code] = generation
    request.session["copresenter"] = dict(list(claimed.items())[-20:])  # the cookie stays small


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
    raw = request.GET.get("code", "")
    if text_problem(raw):  # a NUL or a broken character: no room code has one
        return redirect("/?error=no-room")
    code = normalise_code(raw)
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
    role = role_for(request.session, room.code, room.copresenter_generation)
    if role == "participant" and request.GET.get("as") == "viewer":
        role = "viewer"
    view = room_view(room, role)
    state = room_state(room)
    # The address students open (`make classroom` sets DISTVIZ_PUBLIC_URL), never the host the presenter typed.
    public = settings.DISTVIZ_PUBLIC_URL
    join_url = f"{public}/r/{room.code}/" if public else request.build_absolute_uri(f"/r/{room.code}/")
    current = shown_round(room)
    name_error = request.session.get("name_error")
    if name_error is not None:
        del request.session["name_error"]  # shown once
    if not isinstance(name_error, dict) or name_error.get("code") != room.code:
        name_error = {}
    ctx = {
        "room": room,
        "view": view,
        "concept": concept,
        "role": role,
        "narration": room_narration(room),
        "join_url": join_url,
        "join_qr": cached_qr_svg(join_url, f"QR code to join room {room.code}"),
        "my_name": participant_name(request.session, room.code),
        "named": room.code in request.session.get("names", {}),
        "name_error": name_error.get("message", ""),
        "name_typed": name_error.get("typed", ""),
        "max_name": MAX_NAME,
        # A student who has taken part sees their own panel and "done" line, not a form to refuse.
        "my_panels": my_panels(concept, state, room.round, request.session.get("pid", "") if role == "participant" else ""),
        "round_spec": concept.round_spec(current["kind"]) if current else None,
        "round_html": concept.round_panel(state, current) if concept.round_panel else "",
        "ws_query": "&as=viewer" if role == "viewer" else "",
        "presence_count": presence_count(room.code),
        **lesson_context(room, concept),
        "picture": page_picture(concept, state, view),
        **concept.page_context(state, view),
    }
    return render(request, concept.page_template, ctx)


def name_problem(name: str) -> str | None:
    """Why a participant's name (spaces already collapsed) cannot be used, or None. A name is
    never shortened: one that is too long is refused, with its length and the limit."""
    if not name:
        return "Give a name: it cannot be empty or only spaces."
    if len(name) > MAX_NAME:
        return f"That name has {len(name)} characters; a name has at most {MAX_NAME}. Please shorten it."
    if text_problem(name) or not name.isprintable():
        return "A name is printable characters only."
    if "#" in name:
        return "A name cannot contain #."
    return None


@require_POST
def room_name(request: HttpRequest, code: str) -> HttpResponse:
    """A student says what to call them (their key's name in a round)."""
    room = _room_or_404(code)
    raw = request.POST.get("name", "")
    name = " ".join(raw.split())
    problem = name_problem(name)
    if problem is not None:
        # Shown once on the page, with what they typed (when it is short enough to carry back
        # in the session cookie) so they can correct it.
        request.session["name_error"] = {"code": room.code, "message": problem,
                                         "typed": raw if len(raw) <= 4 * MAX_NAME and not text_problem(raw) else ""}
        return redirect("room", code=room.code)
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
    if role_for(request.session, room.code, room.copresenter_generation) != "presenter":
        return HttpResponse("Only the presenter can hand out a co-presenter link.", status=403)
    key = secrets.token_urlsafe(24)  # 192 bits
    # The new generation revokes every browser that claimed an earlier link (page and socket
    # check it on every request and command); the room's creator is never revoked.
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        locked.presenter_key_hash = hash_key(key)
        locked.copresenter_generation += 1
        locked.save(update_fields=["presenter_key_hash", "copresenter_generation"])
    if copresenter_generation(request.session, room.code) is not None:  # a co-presenter passing it on keeps presenting
        _remember_claim(request, room.code, locked.copresenter_generation)
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
        ok = (bool(key) and not text_problem(key) and bool(room.presenter_key_hash)
              and hmac.compare_digest(hash_key(key), room.presenter_key_hash))
        if not ok:
            return render(request, "rooms/claim.html", {"room": room, "error": "That co-presenter link is not valid (any more)."}, status=403)
        if room.code not in request.session.get("presenter_rooms", []):  # the creator stays the creator
            _remember_claim(request, room.code, room.copresenter_generation)
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
        "state": concept.documented_state(room_state(room)),
    })


@require_POST
def room_fork_view(request: HttpRequest, code: str) -> HttpResponse:
    room = _room_or_404(code)
    new, _key = room_fork(room=room)
    _remember_presenter(request, new)
    return redirect("room", code=new.code)
