from __future__ import annotations

from django.urls import re_path

from .consumers import RoomConsumer

websocket_urlpatterns = [
    re_path(r"^ws/r/(?P<code>[A-Za-z0-9]{4,12})/$", RoomConsumer.as_asgi()),
]
