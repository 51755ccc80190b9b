"""Keyed fragments: the smallest update that turns one picture into the next.

A concept describes its picture as data (``Concept.picture(state, view, change)``):

- *layers*: containers with a stable DOM id holding children that each have a stable id
  (``<g id="ring-keys">`` holding ``<circle id="k-1a2b">`` ...); the page places a layer with
  ``{% layer "ring-keys" %}`` (``templatetags/picture.py``);
- *panels*: whole HTML blocks with an id (``{% panel "ring-summary" %}``);
- *regions*: a block drawn by a template from a context, holding layers (an ``<svg>`` whose
  viewBox follows the scene): while its context stays equal its layers are diffed, when it
  changes the region is drawn again whole (``{% region "lq-diagram" %}``).

Given the pictures of the state before and after an event, :func:`diff` returns htmx
out-of-band swaps:

- a child that appeared is appended to its container (``beforeend``): within a layer an added
  child is drawn last, so what must lie under other elements goes in an earlier layer,
- a child whose markup changed is morphed in place (``outerMorph``: the element stays, so a CSS
  transition animates its new colour or position),
- a child that disappeared is deleted,
- a panel whose markup changed is morphed whole.

The picture is rendered once per event and the same frame goes to every viewer.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.template.base import Node
from django.template.loader import get_template, render_to_string

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


BETWEEN_TAGS = re.compile(r">\s+<")  # template indentation costs bytes on every broadcast


def render_tight(template_name: str, context: dict[str, Any]) -> SafeString:
    """Render an (autoescaping) template without the whitespace between its tags."""
    return mark_safe(BETWEEN_TAGS.sub("><", render_to_string(template_name, context).strip()))


def markup(template: str, *args: object) -> SafeString:
    """``format_html`` for the hot path: every argument is escaped (quotes too), except markup
    that is already safe. Several times faster than ``format_html`` over thousands of elements."""
    return SafeString(template.format(*(a if isinstance(a, SafeString) else html.escape(str(a)) for a in args)))


@dataclass
class Layer:
    id: str
    svg: bool  # children are SVG elements: wrap them in <svg> so the browser parses them as SVG
    # Transient layers (what just moved, what just flew) belong to one update: every update
    # replaces them whole, so the last update's elements never linger.
    transient: bool = False
    children: dict[str, SafeString] = field(default_factory=dict)  # child id -> its markup

    def add(self, child_id: str, markup: SafeString) -> None:
        self.children[child_id] = markup

    def inner(self) -> SafeString:
        return mark_safe("".join(self.children.values()))


@dataclass(frozen=True)
class Region:
    """A block drawn by ``template`` from ``context`` (plain values, compared with ==), placing
    its layers with ``{% layer %}``. ``svg``: the block is an SVG child (a ``<g>``), so a swap
    wraps it in ``<svg>``; an ``<svg>`` or an HTML block is not wrapped."""

    id: str
    template: str
    context: dict[str, Any]
    svg: bool = False


@dataclass(frozen=True)
class Change:
    """What an update knows beyond the new state: the state before and the events applied
    (for transient layers: what just moved, what just flew)."""

    before: Any
    events: list[dict[str, Any]]


@dataclass
class Picture:
    layers: dict[str, Layer] = field(default_factory=dict)
    panels: dict[str, SafeString] = field(default_factory=dict)  # panel id -> outer markup
    regions: dict[str, Region] = field(default_factory=dict)

    def layer(self, layer_id: str, svg: bool = True, transient: bool = False) -> Layer:
        if layer_id not in self.layers:
            self.layers[layer_id] = Layer(layer_id, svg, transient)
        return self.layers[layer_id]

    def region(self, region_id: str, template: str, context: dict[str, Any], svg: bool = False) -> Region:
        self.regions[region_id] = Region(region_id, template, context, svg)
        return self.regions[region_id]

    def render_region(self, region_id: str) -> SafeString:
        region = self.regions[region_id]
        return render_tight(region.template, {**region.context, "picture": self})


def template_layers(template_name: str) -> tuple[str, ...]:
    """The layer ids a template places with ``{% layer %}`` (read from its compiled nodes, once)."""
    return _template_layers(template_name)


@lru_cache(maxsize=256)
def _template_layers(template_name: str) -> tuple[str, ...]:
    template = get_template(template_name).template  # type: ignore[attr-defined]
    # Every node of the compiled template; the {% layer %} nodes are the ones naming a layer.
    return tuple(node.layer_id for node in template.nodelist.get_nodes_by_type(Node) if hasattr(node, "layer_id"))


def _oob(markup: str, swap: str, svg: bool) -> str:
    """Mark the first element of ``markup`` for an out-of-band swap."""
    markup = markup.strip()
    head, sep, tail = markup.partition(" ")
    element = f'{head} hx-swap-oob="{swap}"{" " if tail else ""}{tail}' if sep else markup
    return f"<svg>{element}</svg>" if svg else element


def _in_regions(picture: Picture) -> dict[str, str]:
    """layer id -> the id of the region that places it."""
    return {layer_id: region.id for region in picture.regions.values() for layer_id in template_layers(region.template)}


def _region_swap(picture: Picture, region_id: str) -> str:
    return _oob(picture.render_region(region_id), "outerMorph", picture.regions[region_id].svg)


def full(picture: Picture) -> str:
    """Every region, every other layer's contents and every panel, replacing what the page shows."""
    out = [_region_swap(picture, region_id) for region_id in picture.regions]
    placed = _in_regions(picture) if picture.regions else {}
    for layer in picture.layers.values():
        if layer.id in placed:
            continue
        wrapper = "svg" if layer.svg else "div"
        out.append(format_html('<{} hx-swap-oob="innerHTML:#{}">{}</{}>', mark_safe(wrapper), layer.id, layer.inner(), mark_safe(wrapper)))
    out.extend(_oob(markup, "outerMorph", False) for markup in picture.panels.values())
    return "".join(out)


def diff(before: Picture, after: Picture) -> str:
    out: list[str] = []
    redrawn: set[str] = set()  # layers inside a region drawn again whole
    if after.regions:
        placed = _in_regions(after)
        for region_id, region in after.regions.items():
            old_region = before.regions.get(region_id)
            if old_region is None or old_region.context != region.context or old_region.template != region.template:
                out.append(_region_swap(after, region_id))
                redrawn.update(layer_id for layer_id, r in placed.items() if r == region_id)
    for layer_id, new in after.layers.items():
        if layer_id in redrawn:
            continue
        old = before.layers.get(layer_id)
        if old is None or new.transient:
            out.append(full(Picture(layers={layer_id: new})))
            continue
        added = [markup for cid, markup in new.children.items() if cid not in old.children]
        if added:
            wrapper = "svg" if new.svg else "div"
            out.append(f'<{wrapper} hx-swap-oob="beforeend:#{layer_id}">{"".join(added)}</{wrapper}>')
        for cid, markup in new.children.items():
            if cid in old.children and old.children[cid] != markup:
                out.append(_oob(markup, "outerMorph", new.svg))
        for cid in old.children.keys() - new.children.keys():
            tag = "path" if new.svg else "div"
            out.append(_oob(f'<{tag} id="{cid}"></{tag}>', "delete", new.svg))
    for panel_id, markup in after.panels.items():
        if before.panels.get(panel_id) != markup:
            out.append(_oob(markup, "outerMorph", False))
    return "".join(out)
