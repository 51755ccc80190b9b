"""Reading a frame a page sent: from raw text to a command, or to the sentence refusing it.

A frame from htmx's ``hx-ws`` extension looks like
``{"headers": {"HX-Request-ID": "<uuid>", ...}, "body": {"type": "add_node", ...}}``;
``HX-Request-ID`` (or ``body.command_id``) is the command's id, so a resend is applied once.
Pure: no database, no socket. The consumer sends what :func:`parse` refuses back to the sender.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apps.common.sim.validate import command_problem, text_problem

from .ratelimit import frame_id


class NotFinite(ValueError):
    """Infinity, -Infinity or NaN in a frame: Python's json reads them; no command takes them."""


def _refuse_constant(name: str) -> Any:
    raise NotFinite(name)


@dataclass(frozen=True)
class Frame:
    """A frame that parsed: a command (``sync`` is the page asking for the whole state again)."""

    command: dict[str, Any]
    command_id: str | None

    @property
    def is_sync(self) -> bool:
        return self.command.get("type") == "sync"


@dataclass(frozen=True)
class Refusal:
    message: str
    command_id: str | None


def parse(text_data: str | None, bytes_data: bytes | None, limit: int) -> Frame | Refusal:
    if bytes_data is not None:
        return Refusal("Binary frames are not understood here.", None)
    if text_data is None or len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
        return Refusal(f"That message is too large (the limit is {limit // 1024} KB).", frame_id(text_data))
    try:
        frame = json.loads(text_data, parse_constant=_refuse_constant)
    except RecursionError:  # "[[[[...": nested past what the parser can follow, well under the size limit
        return Refusal("That message was not understood.", frame_id(text_data))
    except NotFinite:
        return Refusal("A number must be finite (not Infinity or NaN); nothing changed.", frame_id(text_data))
    except ValueError:
        return Refusal("That message was not understood (not JSON).", frame_id(text_data))
    if not isinstance(frame, dict):
        return Refusal("That message was not understood.", frame_id(text_data))
    body = frame.get("body", frame)
    raw_headers = frame.get("headers")
    headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
    command_id = (body.get("command_id") if isinstance(body, dict) else None) or headers.get("HX-Request-ID")
    if command_id is not None and (not isinstance(command_id, str) or not 0 < len(command_id) <= 64
                                   or text_problem(command_id)):
        # Not an id the page could have made; answer with the one the raw frame names, if any.
        return Refusal("A command id is text of at most 64 characters (letters, digits, dashes).", frame_id(text_data))
    if not isinstance(body, dict):
        return Refusal("That message was not understood.", command_id)
    if body.get("type") == "sync":
        return Frame({"type": "sync"}, command_id)
    problem = command_problem(body)
    if problem:
        return Refusal(f"{problem} Nothing changed.", command_id)
    return Frame({k: v for k, v in body.items() if k != "command_id" and not k.startswith("_")}, command_id)


def page_seq(query_string: bytes) -> int | None:
    """The seq the connecting page was rendered at (``?seq=N`` in the socket's URL), if any."""
    for part in query_string.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == "seq" and value.isdigit() and len(value) < 12:
            return int(value)
    return None
