"""Who a socket or a page is in a room: presenter, participant or viewer, and by which name.

The room's creator (and whoever forked it) presents, and so does a browser holding the room's
newest co-presenter link; everyone else takes part; a projector or an embed may ask to be a
read-only viewer. Decided from the session alone, in one place, for the page and the socket.
"""
from __future__ import annotations

from typing import Any

def role_for(session: Any, code: str, generation: int | None = None) -> str:
    """The room's creator (and whoever forked it) presents; so does a browser that claimed the
    room's co-presenter link while that link is the newest (``generation``: the room's
    ``copresenter_generation``; issuing a new link revokes every earlier claim)."""
    if session is None:
        return "participant"
    if code in session.get("presenter_rooms", []):
        return "presenter"
    claimed = copresenter_generation(session, code)
    if claimed is not None and generation is not None and claimed == generation:
        return "presenter"
    return "participant"


def copresenter_generation(session: Any, code: str) -> int | None:
    """The generation of the co-presenter link this browser claimed for the room, if it is not
    the room's creator (a creator's rights are never revoked by a new link)."""
    if session is None or code in session.get("presenter_rooms", []):
        return None
    claimed = session.get("copresenter", {})
    value = claimed.get(code) if isinstance(claimed, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def participant_name(session: Any, code: str) -> str:
    """The name a student gave when joining this room, or a stand-in made from their id."""
    names = session.get("names", {}) if session is not None else {}
    pid = session.get("pid", "") if session is not None else ""
    return names.get(code) or (f"Student {pid[:4].upper()}" if pid else "Student")




def socket_role(session: Any, code: str, generation: int | None, query_string: bytes) -> str:
    """The role of a socket: as :func:`role_for`, downgraded to viewer when a participant's page
    asked for a read-only socket (``?as=viewer``; never an upgrade)."""
    role = role_for(session, code, generation)
    if role == "participant" and any(part == b"as=viewer" for part in query_string.split(b"&")):
        return "viewer"
    return role
