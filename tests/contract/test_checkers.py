"""The contract's own instruments, on small made-up inputs: the oob applier (``dom.py``), the
TypedDict checker (``typed.py``), the reading of a page's commands and the sentence rule
(``kit.py``). Each case is one a broken instrument would get wrong."""
from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

import pytest

from tests.contract import bad_inputs, dom, kit, typed

FULL = ('<svg hx-swap-oob="innerHTML:#keys"><circle id="k-1" r="1"/><circle id="k-2" r="2"/></svg>'
        '<div id="panel" hx-swap-oob="outerMorph"><p>2 keys</p></div>')


def test_a_full_picture_becomes_a_document_of_its_layers_and_panels():
    doc = dom.document(FULL)
    assert set(doc.canonical()) == {"keys", "k-1", "k-2", "panel"}


@pytest.mark.parametrize(("update", "then"), [
    ('<svg hx-swap-oob="beforeend:#keys"><circle id="k-3" r="3"/></svg>', {"k-1", "k-2", "k-3"}),
    ('<svg><path id="k-2" hx-swap-oob="delete"></path></svg>', {"k-1"}),
    ('<svg><circle id="k-2" hx-swap-oob="outerMorph" r="9"/></svg>', {"k-1", "k-2"}),
    ('<svg hx-swap-oob="innerHTML:#keys"><circle id="k-7" r="7"/></svg>', {"k-7"}),
], ids=["beforeend", "delete", "outerMorph", "innerHTML"])
def test_each_swap_style_does_what_htmx_does(update, then):
    doc = dom.document(FULL)
    doc.apply(update)
    assert {i for i in doc.canonical() if i.startswith("k-")} == then
    if "r=\"9\"" in update:
        assert "r='9'" in doc.canonical()["k-2"]


@pytest.mark.parametrize("update", [
    '<svg><circle id="k-9" hx-swap-oob="outerMorph"/></svg>',  # no such element
    '<svg hx-swap-oob="beforeend:#nowhere"><circle id="k-3"/></svg>',
    '<svg hx-swap-oob="beforeend:#keys"><circle id="k-1"/></svg>',  # a second k-1
    '<p>not a swap</p>',
])
def test_a_frame_a_browser_could_not_apply_is_an_error(update):
    with pytest.raises(dom.SwapError):
        dom.document(FULL).apply(update)


def test_a_dropped_swap_shows_as_a_difference():
    after = FULL.replace('r="2"', 'r="5"')
    doc = dom.document(FULL)
    doc.apply('<div id="panel" hx-swap-oob="outerMorph"><p>2 keys</p></div>')  # the k-2 morph is missing
    [line] = dom.differences(doc, dom.document(after))
    assert line.startswith("#k-2 differs")
    assert not dom.differences(doc, dom.document(after), ignore=frozenset({"keys"}))  # a transient layer


def test_keyed_children_compare_as_a_set_unless_ordered():
    a, b = dom.document(FULL), dom.document(FULL.replace('<circle id="k-1" r="1"/><circle id="k-2" r="2"/>',
                                                         '<circle id="k-2" r="2"/><circle id="k-1" r="1"/>'))
    assert not dom.differences(a, b)
    assert dom.differences(a, b, ordered=True)


class Inner(TypedDict):
    name: str


class Moved(TypedDict):
    key: str
    count: int
    share: float
    kind: Literal["add", "remove"]
    owners: list[str]
    by_node: dict[str, int]
    inner: Inner
    note: NotRequired[str | None]


GOOD = {"key": "k", "count": 3, "share": 1, "kind": "add", "owners": ["A"], "by_node": {"A": 1}, "inner": {"name": "x"}}


@pytest.mark.parametrize(("data", "problem"), [
    (GOOD, None),
    ({**GOOD, "note": None}, None),
    ({k: v for k, v in GOOD.items() if k != "count"}, "lacks the key 'count'"),
    ({**GOOD, "extra": 1}, "has the key 'extra'"),
    ({**GOOD, "count": True}, "not int"),
    ({**GOOD, "count": 2.5}, "not int"),
    ({**GOOD, "kind": "move"}, "is not one of"),
    ({**GOOD, "owners": ["A", 3]}, "owners'][1]"),
    ({**GOOD, "by_node": {"A": "1"}}, "by_node']['A']"),
    ({**GOOD, "inner": {}}, "lacks the key 'name' (Inner)"),
    ({**GOOD, "note": 3}, "matches none of"),
])
def test_the_typeddict_checker_reads_keys_and_value_types(data, problem):
    found = typed.problems(typed.stored(data), Moved)
    assert (not found) if problem is None else any(problem in p for p in found), found


def test_an_undeclared_event_kind_is_named():
    assert typed.event_problems({"moved": Moved}, {"kind": "jumped", "data": {}}) == [
        "the event kind 'jumped' is not declared in the concept's events"]


PAGE = """<main>
<button data-send="tick" data-arg-dt_ms="1000">+1 s</button>
<g data-send="acquire" data-arg-client="C1"></g>
<form hx-ws:send><input type="hidden" name="type" value="add_node"><input name="name" value="">
  <input type="number" name="vnodes" value="8"><input type="checkbox" name="fast"><button data-send="ignored">Add</button></form>
<form hx-ws:send><input type="hidden" name="type" value="load"><select name="mode"><option>a</option><option selected value="b">B</option></select></form>
<button hx-ws:send hx-vals='{"type": "clear_keys"}'>Clear</button>
</main>"""


def test_a_pages_commands_are_read_as_room_js_and_htmx_send_them():
    found = {json_key(item.command): item.kinds for item in kit.page_commands(PAGE)}
    assert found == {
        json_key({"type": "tick", "dt_ms": "1000"}): {"dt_ms": bad_inputs.INT},
        json_key({"type": "acquire", "client": "C1"}): {"client": bad_inputs.TEXT},
        json_key({"type": "add_node", "name": "", "vnodes": "8"}): {"name": bad_inputs.TEXT, "vnodes": bad_inputs.INT},
        json_key({"type": "load", "mode": "b"}): {"mode": bad_inputs.TEXT},
        json_key({"type": "clear_keys"}): {},
    }


def json_key(command: dict) -> str:
    return kit.PageCommand("", command, {}).key()


@pytest.mark.parametrize(("text", "ok"), [
    ("Added key user1: B stores it.", True),
    ("Lesson step 2 (the pause).", True),
    ("node_added", False),
    ("node added.", False),
    ("Added a node", False),
    ("KeyError: 'x'.", False),
    ("There is no node called ['a'].", False),
    ("Refused: <object at 0x7f>.", False),
])
def test_the_sentence_rule(text, ok):
    assert (kit.sentence_problem(text, "node_added") is None) is ok
