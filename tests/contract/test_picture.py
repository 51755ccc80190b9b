"""Contract 2: the update frame applied to the full picture of the state before is the full
picture of the state after, for every frame a lesson makes (each step, and a room-clock tick
after it). The diff is checked, not trusted: ``dom.py`` applies the swaps as htmx does.

Transient layers (``fragments.Layer.transient``: what just moved or flew, replaced whole by every
update) are left out of the comparison: a full picture draws no flight."""
from __future__ import annotations

import pytest

from apps.rooms import frames
from apps.rooms.registry import REGISTRY
from tests.contract import dom, kit


def update_problems(concept_slug: str, t: kit.Transition) -> list[str]:
    concept = REGISTRY[concept_slug]
    seq_before = t.seq - len(t.moments)
    page = dom.document(frames.picture_full(concept, t.before, kit.view(seq_before)))
    try:
        page.apply(frames.picture_update(concept, t.before, t.after, t.events, kit.view(t.seq)))
    except dom.SwapError as exc:
        return [f"{t.what}: the update cannot be applied: {exc}"]
    want = dom.document(frames.picture_full(concept, t.after, kit.view(t.seq)))
    ignore = kit.transient_layers(concept, t.before, seq_before) | kit.transient_layers(concept, t.after, t.seq)
    return [f"{t.what}: {line}" for line in dom.differences(page, want, ignore)]


@pytest.mark.django_db
@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_the_update_applied_to_the_picture_before_is_the_picture_after(concept_slug, lesson_slug):
    problems = []
    for t in kit.transitions(concept_slug, lesson_slug):
        problems += update_problems(concept_slug, t)
        if len(problems) > 12:
            break
    assert not problems, f"{concept_slug}/{lesson_slug}:\n  " + "\n  ".join(problems)
