"""OffsetLedger: replays skipped, gaps filled, every offset applied exactly once, restore and forget."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.stream.offsets import OffsetLedger

SETTINGS = settings(max_examples=200, deadline=None)


@dataclass
class Model:
    """Brute force: the whole history of each partition, from which the next offset is read."""

    history: dict[int, list[int]] = field(default_factory=dict)  # applied (or restored) offsets, in order

    def expected(self, partition: int) -> int | None:
        offsets = self.history.get(partition)
        return offsets[-1] + 1 if offsets else None

    def classify(self, partition: int, offset: int) -> str:
        expected = self.expected(partition)
        if expected is None or offset == expected:
            return "apply"
        return "replay" if offset < expected else "gap"

    def applied(self, partition: int, offset: int) -> None:
        self.history.setdefault(partition, []).append(offset)

    def restore(self, partition: int, offsets: list[int]) -> None:
        if offsets:
            self.history[partition] = [max(offsets)]

    def forget(self, partitions: list[int] | None) -> None:
        for p in list(self.history) if partitions is None else partitions:
            self.history.pop(p, None)


PARTITIONS = st.integers(0, 3)
OFFSETS = st.integers(0, 60)


@SETTINGS
@given(st.data(), st.integers(5, 80))
def test_ledger_matches_brute_force_history(data: st.DataObject, n_ops: int) -> None:
    ledger, model = OffsetLedger(), Model()
    for _ in range(n_ops):
        op = data.draw(st.sampled_from(["classify", "classify", "applied", "applied", "restore", "forget"]))
        p = data.draw(PARTITIONS)
        expected = model.expected(p)
        # Offsets near the next expected one (next - 1, next, next + 1...) are where mistakes hide.
        near = OFFSETS if expected is None else st.one_of(OFFSETS, st.integers(max(0, expected - 2), expected + 2))
        if op == "classify":
            o = data.draw(near)
            verdict = ledger.classify(p, o)
            assert verdict == model.classify(p, o)
            if verdict == "gap":
                assert ledger.missing_range(p, o) == (expected, o)
        elif op == "applied":
            o = data.draw(near)
            ledger.applied(p, o)
            model.applied(p, o)
        elif op == "restore":
            offsets = data.draw(st.lists(OFFSETS, min_size=1, max_size=5))
            ledger.restore(p, iter(offsets))  # any iterable, read once
            model.restore(p, offsets)
        else:
            partitions = data.draw(st.none() | st.lists(PARTITIONS, max_size=3))
            ledger.forget(None if partitions is None else iter(partitions))
            model.forget(partitions)
        for q in range(4):
            assert ledger.known(q) == (model.expected(q) is not None)


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """What a consumer sees: per partition offsets going forward with replays (back jumps) and skips
    (forward jumps), and now and then a rebalance (forget) for a partition."""
    events: list[tuple[str, int, int]] = []
    position = {p: draw(st.integers(0, 20)) for p in range(3)}
    for _ in range(draw(st.integers(0, 80))):
        p = draw(st.integers(0, 2))
        step = draw(st.sampled_from(["next", "next", "next", "replay", "skip", "rebalance"]))
        if step == "replay":
            position[p] = max(0, position[p] - draw(st.integers(1, 10)))
        elif step == "skip":
            position[p] += draw(st.integers(1, 10))
        elif step == "rebalance":
            events.append(("rebalance", p, -1))
            position[p] = max(0, position[p] - draw(st.integers(0, 10)))  # resumes from an older commit
            continue
        events.append(("deliver", p, position[p]))
        position[p] += 1
    return events


@SETTINGS
@given(deliveries())
def test_worker_loop_applies_every_offset_exactly_once(events: list[tuple[str, int, int]]) -> None:
    # The agent's loop (stream/agents.py): restore from the table when the partition is unknown,
    # skip replays, read a gap back first, apply, record. The table holds the last applied offset.
    ledger = OffsetLedger()
    table: dict[int, list[int]] = {}  # per partition, the offsets written to table values
    applications: Counter[tuple[int, int]] = Counter()
    first: dict[int, int] = {}
    highest: dict[int, int] = {}
    for what, p, offset in events:
        if what == "rebalance":
            ledger.forget([p])
            continue
        if not ledger.known(p):
            ledger.restore(p, table.get(p, []))
        first.setdefault(p, offset)
        highest[p] = max(highest.get(p, offset), offset)
        verdict = ledger.classify(p, offset)
        if verdict == "replay":
            continue
        if verdict == "gap":
            start, end = ledger.missing_range(p, offset)
            assert start < end == offset
            for missing in range(start, end):
                applications[p, missing] += 1
                table.setdefault(p, []).append(missing)
                ledger.applied(p, missing)
        applications[p, offset] += 1
        table.setdefault(p, []).append(offset)
        ledger.applied(p, offset)
    # Brute force: from the first offset a partition delivered to the highest, each exactly once.
    expected = Counter({(p, o): 1 for p in first for o in range(first[p], highest[p] + 1)})
    assert applications == expected


# -- restore and forget ------------------------------------------------------------------------------


def test_docstring_example() -> None:
    ledger = OffsetLedger()
    ledger.restore(partition=0, applied_offsets=[4, 9, 7])  # the highest, 9, was applied last
    assert [ledger.classify(0, o) for o in (10, 8, 9, 12)] == ["apply", "replay", "replay", "gap"]
    assert ledger.missing_range(0, 12) == (10, 12)
    ledger.applied(0, 12)
    assert ledger.classify(0, 13) == "apply"
    assert ledger.classify(1, 500) == "apply"  # no history: take what comes


@pytest.mark.parametrize(
    "offsets",
    [
        [],  # the table holds nothing of this partition
        iter([]),  # an exhausted iterator
    ],
)
def test_restore_from_nothing_leaves_the_partition_unknown(offsets: list[int]) -> None:
    ledger = OffsetLedger()
    ledger.restore(3, offsets)
    assert not ledger.known(3)
    assert [ledger.classify(3, o) for o in (0, 17, 10**12)] == ["apply"] * 3


def test_restore_reads_a_generator_once() -> None:
    ledger = OffsetLedger()
    ledger.restore(0, (o for o in [5, 2, 11]))
    assert (ledger.classify(0, 11), ledger.classify(0, 12), ledger.classify(0, 13)) == ("replay", "apply", "gap")


def test_restore_replaces_what_was_known() -> None:
    ledger = OffsetLedger()
    ledger.applied(0, 100)
    ledger.restore(0, [40])  # the table is the truth after recovery, even if older
    assert ledger.classify(0, 41) == "apply"


@pytest.mark.parametrize(
    ("forgotten", "still_known"),
    [
        (None, []),  # forget everything
        ([1], [0, 2]),  # one partition
        ([0, 2, 7], [1]),  # several, one of them never known
        ([], [0, 1, 2]),  # nothing
    ],
)
def test_forget(forgotten: list[int] | None, still_known: list[int]) -> None:
    ledger = OffsetLedger()
    for p in (0, 1, 2):
        ledger.applied(p, 10 * p + 5)
    ledger.forget(forgotten)
    assert [p for p in (0, 1, 2, 7) if ledger.known(p)] == still_known
    for p in (0, 1, 2):
        # a forgotten partition applies whatever comes; a known one still sees replays
        assert ledger.classify(p, 0) == ("replay" if p in still_known else "apply")
