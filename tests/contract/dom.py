"""A small pure-Python stand-in for what htmx does with a frame's out-of-band swaps, so the
contract suite can check a diff instead of trusting it.

:func:`parse` reads markup (``html.parser``) into a tree of :class:`El`; a :class:`Doc` is a forest
of them, indexed by element id. :meth:`Doc.apply` applies a frame's ``hx-swap-oob`` elements in
order, as htmx 4 does (``#createOOBTask``): ``innerHTML:#id`` replaces the children of #id,
``beforeend:#id`` appends to them, ``outerMorph`` / ``outerHTML`` / ``true`` replace the element
with the same id, ``delete`` removes it. An oob element wrapped in a plain ``<svg>`` (what
``fragments`` sends so the browser parses SVG children as SVG) is unwrapped, and the children of
an ``innerHTML``/``beforeend`` swap are used without their wrapper. A swap whose target is not in
the document is an error, as is a second element with an id already there.

:func:`document` builds the document a full picture makes: its swaps applied to an empty page in
which every ``innerHTML`` target is an empty container and every ``outerMorph`` element is placed
as it is. Two documents compare with :func:`differences` (whitespace-only text left out, attribute
order ignored, the children of ``ignore`` ids left out).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
OOB = "hx-swap-oob"


class SwapError(AssertionError):
    """A frame a browser could not apply as meant: a swap with no target, a duplicate id."""


@dataclass(eq=False)
class El:
    tag: str
    attrs: dict[str, str]
    children: list[El | str] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    def elements(self) -> list[El]:
        return [c for c in self.children if isinstance(c, El)]

    def walk(self):  # noqa: ANN201 - a generator of El
        yield self
        for child in self.elements():
            yield from child.walk()

    def without(self, name: str) -> El:
        return El(self.tag, {k: v for k, v in self.attrs.items() if k != name}, self.children)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = El("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = El(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(El(tag, {k: v if v is not None else "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        names = [el.tag for el in self.stack[1:]]
        if tag in names:  # close up to the matching tag (a stray end tag is dropped)
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(markup: str) -> list[El | str]:
    """The top-level nodes of ``markup``."""
    parser = _Parser()
    parser.feed(markup)
    parser.close()
    return parser.root.children


def ids_in(markup: str) -> set[str]:
    """Every element id in a page or fragment."""
    return {el.id for node in parse(markup) if isinstance(node, El) for el in node.walk() if el.id}


@dataclass
class Swap:
    style: str  # innerHTML, beforeend, outerMorph, delete...
    target: str  # an element id
    el: El  # the oob element, its hx-swap-oob attribute removed


TARGET = re.compile(r"#([\w:.-]+)")


def swaps(markup: str) -> list[Swap]:
    """The frame's oob swaps in order; a plain ``<svg>`` wrapper is looked through."""
    found: list[Swap] = []

    def visit(node: El | str, top: bool) -> None:
        if isinstance(node, str):
            if node.strip() and top:
                raise SwapError(f"text outside any swap: {node.strip()[:60]!r}")
            return
        if OOB in node.attrs:
            value = node.attrs[OOB] or "true"
            style, _, selector = value.partition(":")
            if value == "true":
                style = "outerHTML"
            m = TARGET.fullmatch(selector) if selector else None
            target = m.group(1) if m else node.id
            if selector and m is None or not target:
                raise SwapError(f"a swap this checker cannot place: {OOB}={value!r} on <{node.tag}>")
            found.append(Swap(style, target, node.without(OOB)))
        elif node.tag == "svg" and top and not node.attrs:
            for child in node.children:
                visit(child, False)
        elif top:
            raise SwapError(f"an element outside any swap: <{node.tag} {node.attrs}>")

    for node in parse(markup):
        visit(node, True)
    return found


class Doc:
    """A forest of elements indexed by id, to which frames are applied."""

    def __init__(self) -> None:
        self.roots: list[El] = []
        self.where: dict[str, tuple[El, El | None]] = {}  # id -> (element, parent; None for a root)

    def _index(self, el: El, parent: El | None) -> None:
        if el.id:
            if el.id in self.where:
                raise SwapError(f"a second element with id {el.id!r}")
            self.where[el.id] = (el, parent)
        for child in el.elements():
            self._index(child, el)

    def _unindex(self, el: El) -> None:
        for node in el.walk():
            if node.id and self.where.get(node.id, (None,))[0] is node:
                del self.where[node.id]

    def _set_children(self, target: El, children: list[El | str]) -> None:
        for child in target.elements():
            self._unindex(child)
        target.children = list(children)
        for child in target.elements():
            self._index(child, target)

    def _replace(self, old: El, parent: El | None, new: El) -> None:
        self._unindex(old)
        siblings: list[El | str] | list[El] = parent.children if parent is not None else self.roots
        siblings[next(i for i, s in enumerate(siblings) if s is old)] = new
        self._index(new, parent)

    def apply(self, markup: str) -> None:
        """Apply a frame's swaps in order."""
        self.apply_swaps(swaps(markup))

    def apply_swaps(self, todo: list[Swap], *, place_missing: bool = False) -> None:
        """With ``place_missing`` (building a page from a full picture), a container an
        ``innerHTML`` swap names and an element an outer swap brings are added as new roots when
        the document has no such id yet."""
        for swap in todo:
            found = self.where.get(swap.target)
            if found is None and place_missing and swap.style in ("innerHTML", "outerMorph", "outerHTML"):
                root = swap.el if swap.style != "innerHTML" else El("#container", {"id": swap.target}, swap.el.children)
                self.roots.append(root)
                self._index(root, None)
                continue
            if found is None:
                raise SwapError(f"{swap.style} swap of #{swap.target}: no such element in the document")
            target, parent = found
            if swap.style in ("innerHTML", "innerMorph"):
                self._set_children(target, swap.el.children)
            elif swap.style == "beforeend":
                self._set_children(target, target.children + swap.el.children)
            elif swap.style == "afterbegin":
                self._set_children(target, swap.el.children + target.children)
            elif swap.style in ("outerMorph", "outerHTML"):
                if swap.el.id != swap.target:
                    raise SwapError(f"{swap.style} of #{swap.target} brings an element with id {swap.el.id!r}")
                if target.tag == "#container":  # a layer's stand-in container keeps its place
                    self._set_children(target, swap.el.children)
                else:
                    self._replace(target, parent, swap.el)
            elif swap.style == "delete":
                self._unindex(target)
                siblings = parent.children if parent is not None else self.roots
                siblings[:] = [s for s in siblings if s is not target]
            else:
                raise SwapError(f"a swap style this checker does not know: {swap.style!r}")

    def canonical(self, ignore: frozenset[str] = frozenset(), ordered: bool = False) -> dict[str, str]:
        """id -> the canonical text of that element's subtree, for every element with an id.
        Unless ``ordered``, the children that have an id are taken in the order of their ids: an
        update appends a new keyed child at the end of its layer (``beforeend``) wherever a full
        picture draws it, so only which keyed children a container holds is compared."""
        out: dict[str, str] = {}

        def order(children: list[El | str]) -> list[El | str]:
            kept = [c for c in children if not (isinstance(c, str) and not c.strip())]
            if ordered:
                return kept
            keyed = sorted((c for c in kept if isinstance(c, El) and c.id), key=lambda c: c.id or "")
            return [c for c in kept if not (isinstance(c, El) and c.id)] + list(keyed)

        def text(node: El | str) -> str:
            if isinstance(node, str):
                return node
            attrs = " ".join(f"{k}={v!r}" for k, v in sorted(node.attrs.items()))
            inner = "" if node.id in ignore else "".join(text(c) for c in order(node.children))
            body = f"<{node.tag} {attrs}>{inner}</{node.tag}>"
            if node.id:
                out[node.id] = body
            return body

        for root in self.roots:
            text(root)
        return out


OUTER = ("outerMorph", "outerHTML")


def document(full_markup: str) -> Doc:
    """The page a full picture makes: the elements it brings whole (panels, regions) placed
    first, as the page template places them, then the layers' contents poured in."""
    todo = swaps(full_markup)
    doc = Doc()
    doc.apply_swaps([s for s in todo if s.style in OUTER] + [s for s in todo if s.style not in OUTER], place_missing=True)
    return doc


def differences(got: Doc, want: Doc, ignore: frozenset[str] = frozenset(), most: int = 6,
                ordered: bool = False) -> list[str]:
    """Where two documents differ: ids only one has, and the innermost elements whose markup
    differs (an element whose only difference is inside a differing child is not listed)."""
    a, b = got.canonical(ignore, ordered), want.canonical(ignore, ordered)
    lines = [f"#{i} only in the document the update made" for i in sorted(a.keys() - b.keys())]
    lines += [f"#{i} missing from the document the update made" for i in sorted(b.keys() - a.keys())]
    differ = {i for i in a.keys() & b.keys() if a[i] != b[i]}
    for i in sorted(differ):
        el = got.where[i][0]
        if any(d.id in differ for d in el.walk() if d is not el):
            continue
        lines.append(f"#{i} differs:\n      update made: {a[i][:300]}\n      full picture: {b[i][:300]}")
    return lines[:most] + ([f"... and {len(lines) - most} more"] if len(lines) > most else [])
