"""Placing a concept's picture in its page: ``{% load picture %}`` then

- ``{% layer "ring-keys" class="keys" %}``: the layer's container (``<g>`` for an SVG layer, ``<div>``
  for an HTML one, or ``tag="ul"``) with the given attributes (``aria_label`` is written
  ``aria-label``) and the layer's children from the picture;
- ``{% panel "ring-summary" %}``: a panel's markup;
- ``{% region "lq-diagram" %}``: a region drawn by its template (which places its own layers).

The picture comes from the template context (``picture``: the engine puts it there). An id the
picture does not have is an error, so a page and its picture cannot drift apart silently.
"""
from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, Parser, Token
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..fragments import Picture

register = template.Library()


def _picture(context: template.Context) -> Picture:
    picture = context.get("picture")
    if not isinstance(picture, Picture):
        raise template.TemplateSyntaxError("{% layer %}, {% panel %} and {% region %} need `picture` in the context")
    return picture


class LayerNode(template.Node):
    def __init__(self, layer_id: str, attrs: dict[str, FilterExpression]) -> None:
        self.layer_id = layer_id
        self.attrs = attrs

    def render(self, context: template.Context) -> SafeString:
        picture = _picture(context)
        layer = picture.layers.get(self.layer_id)
        if layer is None:
            raise template.TemplateSyntaxError(f"the picture has no layer {self.layer_id!r}")
        values = {name: value.resolve(context) for name, value in self.attrs.items()}
        tag = str(values.pop("tag", "g" if layer.svg else "div"))
        attrs = "".join(f' {name.replace("_", "-")}="{escape(str(value))}"' for name, value in values.items())
        return mark_safe(f'<{tag} id="{self.layer_id}"{attrs}>{layer.inner()}</{tag}>')


@register.tag("layer")
def layer_tag(parser: Parser, token: Token) -> LayerNode:
    bits = token.split_contents()
    if len(bits) < 2 or bits[1][0] not in "\"'" or bits[1][-1] != bits[1][0]:
        raise template.TemplateSyntaxError('{% layer "id" name=value ... %}: the id is a quoted string')
    attrs = {}
    for bit in bits[2:]:
        name, eq, value = bit.partition("=")
        if not eq:
            raise template.TemplateSyntaxError(f"{{% layer %}}: {bit!r} is not name=value")
        attrs[name] = parser.compile_filter(value)
    return LayerNode(bits[1][1:-1], attrs)


@register.simple_tag(takes_context=True)
def panel(context: template.Context, panel_id: str) -> SafeString:
    picture = _picture(context)
    if panel_id not in picture.panels:
        raise template.TemplateSyntaxError(f"the picture has no panel {panel_id!r}")
    return mark_safe(picture.panels[panel_id])


@register.simple_tag(takes_context=True)
def region(context: template.Context, region_id: str) -> SafeString:
    picture = _picture(context)
    if region_id not in picture.regions:
        raise template.TemplateSyntaxError(f"the picture has no region {region_id!r}")
    return picture.render_region(region_id)

