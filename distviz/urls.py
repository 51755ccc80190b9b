from __future__ import annotations

from django.urls import path

from apps.rooms import views

handler400 = "distviz.errors.bad_request"

urlpatterns = [
    path("", views.home, name="home"),
    path("new/<slug:concept>/", views.room_new, name="room_new"),
    path("join/", views.join, name="join"),
    path("r/<str:code>/", views.room_page, name="room"),
    path("r/<str:code>/events.json", views.room_events_json, name="room_events"),
    path("r/<str:code>/state.json", views.room_state_json, name="room_state"),
    path("r/<str:code>/fork/", views.room_fork_view, name="room_fork"),
    path("r/<str:code>/name/", views.room_name, name="room_name"),
    path("r/<str:code>/copresenter/", views.room_copresenter, name="room_copresenter"),
    path("r/<str:code>/claim/", views.room_claim, name="room_claim"),
]
