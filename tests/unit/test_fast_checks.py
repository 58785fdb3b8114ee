"""The decoder's fast paths against the slow rules they stand in for.

`Field.acceptor` must never let through a value `Field.check` would convert or refuse, and
`too_deep` must agree with a plain recursive depth count, for every field and many values.
"""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest

from footfall.schemas.events import _CLASSES, _FILLERS, COMMON_FIELDS, KIND_FIELDS
from footfall.schemas.fields import Field, InvalidEvent
from footfall.schemas.messages import MAX_DEPTH, too_deep

EVERY_FIELD = [*COMMON_FIELDS, *(f for fields in KIND_FIELDS.values() for f in fields)]


class Label(str):
    """A str subclass: `check` takes it, the fast test need not."""


def candidate_values(field: Field) -> list[Any]:
    """Values around each of the field's rules, valid and not."""
    values: list[Any] = [
        True, False, 0, 1, -1, 3.0, 2.5, -0.0, 1e308, math.inf, -math.inf, math.nan, 10**30, "", "a", "A1",
        "x" * 63, "x" * 64, "x" * 65, "x" * 128, "x" * 129, "EUR", "eur", "EURO", "s-1", "-s", "a b", "é",
        Label("in"), [], {}, ["in"], {"a": 1}, None,
    ]
    for bound in (field.minimum, field.maximum):
        if bound is not None:
            values += [bound, bound - 1, bound + 1, float(bound), bound - 0.5, bound + 0.5, int(bound)]
    if field.enum:
        values += [*field.enum, *(v.upper() for v in field.enum), *(v + " " for v in field.enum)]
    return values


@pytest.mark.parametrize("field", EVERY_FIELD, ids=lambda f: f.name)
def test_the_fast_test_accepts_only_what_check_returns_unchanged(field: Field) -> None:
    accepts = field.acceptor()
    for value in candidate_values(field):
        if value is None:
            continue
        try:
            checked = field.check(value)
        except InvalidEvent:
            assert not accepts(value), (field.name, value)
            continue
        if accepts(value):
            assert checked is value, (field.name, value)
        elif type(value) in (str, int, float, bool) and checked is value:
            # Refused by the fast test though `check` keeps it as is: only a slower path, but the
            # common values must take the fast one.
            pytest.fail(f"{field.name}: fast test refused valid {value!r}")


def depth(value: Any) -> int:
    """Levels of arrays and objects, counted by recursion (the reference)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def random_document(rng: random.Random, levels: int) -> Any:
    """A document exactly `levels` deep: one child carries the depth on, its siblings are shallow."""
    if levels == 0:
        return rng.choice([1, "a", None, 2.5, "[{", "]}"])
    children = [random_document(rng, rng.randint(0, min(levels - 1, 3))) for _ in range(rng.randint(0, 3))]
    children.insert(rng.randint(0, len(children)), random_document(rng, levels - 1))
    if rng.random() < 0.5:
        return children
    return {f"k{i}": child for i, child in enumerate(children)}


def test_too_deep_agrees_with_a_recursive_depth_count() -> None:
    rng = random.Random(5)
    seen: set[bool] = set()
    for _ in range(400):
        levels = rng.choice([1, 3, 20, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 3])
        doc = random_document(rng, levels)
        raw = orjson.dumps(doc)
        assert depth(doc) == levels
        expected = levels > MAX_DEPTH
        seen.add(expected)
        assert too_deep(raw, doc) is expected, depth(doc)
    # A chain exactly at the limit, and one level past it, hidden in a batch of flat events.
    flat = [{"event_id": f"e{i}", "n": i} for i in range(100)]
    for levels, expected in ((MAX_DEPTH - 1, False), (MAX_DEPTH, True)):
        member: Any = 1
        for _ in range(levels - 1):
            member = [member]
        doc = [*flat, {"x": member}]
        assert depth(doc) == levels + 1
        assert too_deep(orjson.dumps(doc), doc) is expected
    assert seen == {True, False}


@pytest.mark.parametrize("kind", sorted(_CLASSES))
def test_events_filled_slot_by_slot_are_the_events_the_dataclass_makes(kind: str) -> None:
    import dataclasses

    cls = _CLASSES[kind]
    rng = random.Random(kind)
    for _ in range(50):
        fields = {f.name: rng.choice([None, rng.randint(0, 9), f"v{rng.randint(0, 9)}", rng.random()])
                  for f in dataclasses.fields(cls)}
        made, reference = _FILLERS[kind](**fields), cls(**fields)
        assert type(made) is cls
        assert made == reference and hash(made) == hash(reference) and repr(made) == repr(reference)
        assert dataclasses.asdict(made) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.ts_ms = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        _FILLERS[kind](**{**fields, "unknown": 1})
    with pytest.raises(TypeError):
        _FILLERS[kind](**{k: v for k, v in fields.items() if k != "ts_ms"})
