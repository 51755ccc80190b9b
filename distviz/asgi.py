"""ASGI entry point: HTTP through Django, WebSockets through Channels."""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "distviz.settings")
django_asgi_app = get_asgi_application()  # before importing consumers: it sets Django up

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from apps.rooms.checks import multi_process_errors  # noqa: E402
from apps.rooms.origin import OriginValidator  # noqa: E402
from apps.rooms.routing import websocket_urlpatterns  # noqa: E402

_errors = multi_process_errors()
if _errors:
    raise ImproperlyConfigured(f"{_errors[0].msg} {_errors[0].hint}")

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Scheme, host and port of the page's Origin against the allowed origins (apps/rooms/origin.py).
        "websocket": OriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
