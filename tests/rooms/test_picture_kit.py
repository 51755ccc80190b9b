"""The engine's picture kit: layers, panels and regions placed by template tags, full frames and
diffs (``fragments.py``), and the engine's caches (``frames.py``)."""
from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.utils.safestring import mark_safe

from apps.rooms import frames
from apps.rooms.fragments import Picture, diff, full, template_layers

REGION = "{% load picture %}<svg id='box' viewBox='0 0 {{ w }} 10'>{% layer \"inner\" %}</svg>"


@pytest.fixture
def region_template(tmp_path, settings):
    folder = tmp_path / "kit"
    folder.mkdir()
    (folder / "box.html").write_text(REGION)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path), *settings.TEMPLATES[0]["DIRS"]]}]
    from apps.rooms.fragments import _template_layers
    _template_layers.cache_clear()
    yield "kit/box.html"
    _template_layers.cache_clear()


def drawing(width: int, dots: dict[str, int], note: str = "n") -> Picture:
    pic = Picture()
    pic.region("box", "kit/box.html", {"w": width})
    inner = pic.layer("inner")
    for name, x in dots.items():
        inner.add(f"d-{name}", mark_safe(f'<circle id="d-{name}" cx="{x}"/>'))
    outer = pic.layer("outer", svg=False)
    outer.add("o-1", mark_safe('<div id="o-1">one</div>'))
    pic.panels["note"] = mark_safe(f'<p id="note">{note}</p>')
    return pic


def test_the_layer_tag_draws_the_container_with_its_attributes_and_children(region_template):
    pic = drawing(10, {"a": 1})
    html = Template('{% load picture %}{% layer "outer" tag="ul" class="list" aria_label="The <list>" %}{% panel "note" %}').render(Context({"picture": pic}))
    assert html == '<ul id="outer" class="list" aria-label="The &lt;list&gt;"><div id="o-1">one</div></ul><p id="note">n</p>'


def test_an_id_the_picture_lacks_is_an_error(region_template):
    with pytest.raises(TemplateSyntaxError, match="no layer 'nope'"):
        Template('{% load picture %}{% layer "nope" %}').render(Context({"picture": Picture()}))
    with pytest.raises(TemplateSyntaxError, match="no panel"):
        Template('{% load picture %}{% panel "nope" %}').render(Context({"picture": Picture()}))


def test_a_region_knows_its_layers_and_draws_them(region_template):
    assert template_layers(region_template) == ("inner",)
    html = Template('{% load picture %}{% region "box" %}').render(Context({"picture": drawing(10, {"a": 1})}))
    assert html == "<svg id='box' viewBox='0 0 10 10'><g id=\"inner\"><circle id=\"d-a\" cx=\"1\"/></g></svg>"


def test_full_draws_regions_whole_and_other_layers_by_their_contents(region_template):
    out = full(drawing(10, {"a": 1}))
    assert "<svg hx-swap-oob=\"outerMorph\" id='box'" in out
    assert 'innerHTML:#inner' not in out  # inside the region: drawn with it
    assert 'hx-swap-oob="innerHTML:#outer"' in out
    assert '<p hx-swap-oob="outerMorph" id="note">' in out


def test_a_region_with_the_same_context_is_diffed_by_its_layers(region_template):
    out = diff(drawing(10, {"a": 1, "b": 2}), drawing(10, {"a": 5, "c": 3}))
    assert "id='box'" not in out
    assert '<svg><circle hx-swap-oob="outerMorph" id="d-a" cx="5"/></svg>' in out
    assert '<svg hx-swap-oob="beforeend:#inner"><circle id="d-c" cx="3"/></svg>' in out
    assert 'id="d-b"' in out and "delete" in out
    assert "note" not in out and "o-1" not in out  # unchanged: not sent


def test_a_region_whose_context_changed_is_drawn_again_whole(region_template):
    out = diff(drawing(10, {"a": 1}), drawing(20, {"a": 5}))
    assert out.count("d-a") == 1  # inside the redrawn region only, not also as a morph
    assert "viewBox='0 0 20 10'" in out and 'hx-swap-oob="outerMorph"' in out


def test_memo_builds_once_per_key_and_stays_bounded():
    calls = []
    for _ in range(3):
        assert frames.memo(("test-memo", 1), lambda: calls.append(1) or "built") == "built"
    assert calls == [1]
    for i in range(frames.MEMO_SIZE + 5):
        frames.memo(("test-memo-fill", i), lambda: i)
    assert len(frames._MEMO) <= frames.MEMO_SIZE
    frames.memo(("test-memo", 1), lambda: calls.append(2) or "again")
    assert calls == [1, 2]  # the oldest key was dropped
