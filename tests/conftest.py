from __future__ import annotations

import pytest

TEST_APPS = ["tests.toyconcept"]  # the counter board, the concept the engine's own tests run on


def pytest_configure(config: pytest.Config) -> None:
    """Register the test-only concept: pytest-django has set Django up by now (in
    pytest_load_initial_conftests), so the app is added the way override_settings adds one:
    the app registry is filled again and the template and static caches are told."""
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured or all(app in settings.INSTALLED_APPS for app in TEST_APPS):
        return
    override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, *TEST_APPS]).enable()


@pytest.fixture(autouse=True)
def _fresh_state_cache():
    """Each test starts without folded states left over from another test's rooms."""
    from apps.rooms.services import STATE_CACHE

    STATE_CACHE.clear()
    yield
    STATE_CACHE.clear()
