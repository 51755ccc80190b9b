"""The WebSocket Origin check: a socket is accepted only from a page of an allowed origin.

An origin is scheme, host and port, compared exactly (the default port of the scheme when none
is written): a page on another port of the same host, or the same host over the other scheme,
is another site and is refused. The allowed origins are

- the origin the request itself was served as: the scheme of the connection (``wss`` is https;
  behind a TLS proxy, ``SECURE_PROXY_SSL_HEADER`` says so) and its ``Host`` header, when that
  host is in ``ALLOWED_HOSTS``;
- ``DISTVIZ_PUBLIC_URL`` when set (the address ``make classroom`` advertises);
- each of ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.org`` allows its subdomains).

A socket without an Origin is refused. A request without a ``Host`` header is not a browser's
(browsers always send one, and only a browser's Origin means anything: any other client can
write whatever Origin it likes); for it the host must be in ``ALLOWED_HOSTS`` with the scheme's
default port (what Channels' ``AllowedHostsOriginValidator`` checked, and what test clients send).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """("http", "host", port) for an origin or URL, or None when it is not one."""
    try:
        parts = urlsplit(text.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def served_scheme(scope: dict[str, Any]) -> str:
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, value = proxy
        name = header.lower().removeprefix("http_").replace("_", "-").encode("latin-1")
        if (_header(scope, name) or "").split(",")[0].strip() == value:
            return "https"
    return "http"


def _trusted(origin: Origin, pattern: str) -> bool:
    if "*" in pattern:  # CSRF_TRUSTED_ORIGINS' "https://*.example.org": any subdomain, same scheme/port
        wanted = parse_origin(pattern.replace("*.", "x.", 1))
        if wanted is None:
            return False
        suffix = wanted[1][1:]  # ".example.org"
        return origin[0] == wanted[0] and origin[2] == wanted[2] and origin[1].endswith(suffix)
    return parse_origin(pattern) == origin


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    origin = parse_origin(raw) if raw else None
    if origin is None:
        return False
    public = getattr(settings, "DISTVIZ_PUBLIC_URL", "")
    if public and parse_origin(public) == origin:
        return True
    if any(_trusted(origin, pattern) for pattern in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])):
        return True
    host = _header(scope, b"host")
    if host is None:  # not a browser (see the module's docstring)
        return origin[2] == DEFAULT_PORTS[origin[0]] and validate_host(origin[1], settings.ALLOWED_HOSTS)
    served = parse_origin(f"{served_scheme(scope)}://{host}")
    if served is None or served != origin:
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class OriginValidator:
    """ASGI middleware: a WebSocket whose Origin is not allowed is closed before the consumer runs."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
