"""Does an event's data match the TypedDict its concept declares for its kind?

:func:`problems` checks keys (every required key present, no key the type does not name) and
value types, recursively: ``int`` (not ``bool``), ``float`` (an ``int`` too), ``str``, ``bool``,
``None``, ``Any``, unions (``X | None``), ``Literal``, ``list``/``Sequence``/``tuple`` (a JSON list),
``dict``/``Mapping``, and nested TypedDicts. It reads the data as the log stores it (JSON), so a
tuple is a list and a map's keys are text.
"""
from __future__ import annotations

import collections.abc
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict  # noqa: F401 (is_typeddict: for the tests)

SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.MutableSequence)
MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def problems(data: Any, hint: Any, where: str = "data") -> list[str]:
    """Why ``data`` (JSON-shaped) does not match ``hint``; empty when it does."""
    if hint is Any or hint is object:
        return []
    if is_typeddict(hint):
        return _typeddict(data, hint, where)
    origin = get_origin(hint)
    if hint is None or hint is type(None):
        return [] if data is None else [f"{where} is {data!r}, not None"]
    if origin in (Union, types.UnionType):
        options = [problems(data, arm, where) for arm in get_args(hint)]
        return [] if any(not p for p in options) else [f"{where} = {data!r} matches none of {_name(hint)}"]
    if origin is Literal:
        return [] if data in get_args(hint) else [f"{where} = {data!r} is not one of {get_args(hint)}"]
    if origin in SEQUENCES or hint in SEQUENCES:
        return _sequence(data, hint, where)
    if origin in MAPPINGS or hint in MAPPINGS:
        return _mapping(data, hint, where)
    if origin is not None:
        return [f"{where}: this checker does not read the type {_name(hint)}"]
    return [] if _scalar(data, hint) else [f"{where} = {data!r} is {type(data).__name__}, not {_name(hint)}"]


def _scalar(data: Any, hint: Any) -> bool:
    if hint is float:
        return isinstance(data, (int, float)) and not isinstance(data, bool)
    if hint is int:
        return isinstance(data, int) and not isinstance(data, bool)
    return isinstance(hint, type) and isinstance(data, hint)


def _typeddict(data: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where} is {type(data).__name__}, not the mapping {hint.__name__}"]
    fields, required = _fields(hint)
    found = [f"{where} lacks the key {k!r} ({hint.__name__})" for k in sorted(required - data.keys())]
    found += [f"{where} has the key {k!r}, which {hint.__name__} does not declare" for k in sorted(data.keys() - fields.keys())]
    for key in sorted(data.keys() & fields.keys()):
        found += problems(data[key], fields[key], f"{where}[{key!r}]")
    return found


def _fields(hint: Any) -> tuple[dict[str, Any], set[str]]:
    """A TypedDict's fields (their types without ``NotRequired``) and its required keys, read
    from the annotations themselves: under ``from __future__ import annotations`` Python 3.11's
    ``__required_keys__`` does not see ``NotRequired``."""
    raw = get_type_hints(hint, include_extras=True)
    fields, required = {}, set()
    for key, value in raw.items():
        origin = get_origin(value)
        if origin in (typing.NotRequired, typing.Required):
            value = get_args(value)[0]
        if origin is typing.Required or (origin is not typing.NotRequired and hint.__total__):
            required.add(key)
        while get_origin(value) is typing.Annotated:
            value = get_args(value)[0]
        fields[key] = value
    return fields, required


def _sequence(data: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(data, list):
        return [f"{where} = {data!r} is {type(data).__name__}, not a list ({_name(hint)})"]
    args = get_args(hint)
    if get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(data):
            return [f"{where} has {len(data)} items, {_name(hint)} has {len(args)}"]
        return [p for i, (item, arm) in enumerate(zip(data, args)) for p in problems(item, arm, f"{where}[{i}]")]
    item = args[0] if args else Any
    return [p for i, value in enumerate(data) for p in problems(value, item, f"{where}[{i}]")][:5]


def _mapping(data: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where} = {data!r} is {type(data).__name__}, not a mapping ({_name(hint)})"]
    key_hint, value_hint = get_args(hint) or (Any, Any)
    found = []
    for key, value in data.items():
        found += problems(key, key_hint, f"{where} key {key!r}")
        found += problems(value, value_hint, f"{where}[{key!r}]")
    return found[:5]


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def stored(data: Any) -> Any:
    """The data as the log keeps it (and as the fold reads it back)."""
    return json.loads(json.dumps(data))


def event_problems(declared: typing.Mapping[str, Any], event: dict[str, Any]) -> list[str]:
    """An event's kind is declared and its (stored) data matches the kind's TypedDict."""
    kind = event["kind"]
    if kind not in declared:
        return [f"the event kind {kind!r} is not declared in the concept's events"]
    return problems(stored(event["data"]), declared[kind], f"{kind} data")
