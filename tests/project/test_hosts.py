"""A host that is not allowed gets a page naming the address that works, not a bare 400."""
from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_a_host_not_allowed_is_told_the_public_address(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.2"]
    settings.DISTVIZ_PUBLIC_URL = "http://127.0.0.2:8000"
    resp = Client().get("/", HTTP_HOST="10.1.2.3:8000")
    assert resp.status_code == 400
    body = resp.content.decode()
    assert "not the address distviz answers at" in body
    assert 'href="http://127.0.0.2:8000/"' in body
    ok = Client().get("/", HTTP_HOST="127.0.0.2")
    assert ok.status_code == 200


@pytest.mark.django_db
def test_without_a_public_address_the_page_points_at_the_join_panel(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.2"]
    settings.DISTVIZ_PUBLIC_URL = ""
    resp = Client().get("/", HTTP_HOST="evil.example")
    assert resp.status_code == 400 and "join panel" in resp.content.decode()
