"""Error pages that tell the person what to do, never a debug page."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBadRequest
from django.template.loader import render_to_string


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponseBadRequest:
    """A host this server does not serve (a phone that typed another address of the laptop) is
    told the address that works. Rendered without the request: its host is the problem."""
    wrong_host = isinstance(exception, DisallowedHost)
    html = render_to_string("400.html", {"wrong_host": wrong_host, "public_url": settings.DISTVIZ_PUBLIC_URL})
    return HttpResponseBadRequest(html)
