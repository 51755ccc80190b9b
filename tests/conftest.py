from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_state_cache():
    """Each test starts without folded states left over from another test's rooms."""
    from apps.rooms.services import STATE_CACHE

    STATE_CACHE.clear()
    yield
    STATE_CACHE.clear()
