"""EndedTickets against a brute-force dict of ticket id -> (steps, end), oldest first, at every step."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.ended_tickets import EndedTickets, ticket_digest
from footfall.operators.kpis.queues import QueueKpis

OPS = st.lists(st.tuples(st.sampled_from(["remember", "add", "forget", "clear"]), st.integers(0, 12),
                         st.integers(0, 255), st.integers(0, 10_000)), max_size=120)


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(1, 6))
def test_matches_a_dict_of_ticket_ids_at_every_step(ops: list[tuple[str, int, int, int]], max_tickets: int) -> None:
    model: dict[str, tuple[int, int]] = {}
    ended = EndedTickets(max_tickets)
    for op, n, steps, ts_ms in ops:
        ticket = f"T{n:04d}"
        if op == "remember":
            ended.remember(ticket, steps, ts_ms)
            model.pop(ticket, None)
            model[ticket] = (steps, ts_ms)
            while len(model) > max_tickets:
                del model[next(iter(model))]
        elif op == "add":
            ended.add_steps(ticket, steps)
            if ticket in model:
                model[ticket] = (model[ticket][0] | steps, model[ticket][1])
        elif op == "forget":
            ended.forget_ended_at_or_before(ts_ms)
            model = {t: v for t, v in model.items() if v[1] > ts_ms}
        else:
            ended.clear()
            model.clear()
        assert len(ended) == len(model)
        assert {f"T{k:04d}": ended.steps_of(f"T{k:04d}") for k in range(13)} == {
            f"T{k:04d}": model[f"T{k:04d}"][0] if f"T{k:04d}" in model else None for k in range(13)}
        assert ended.to_state() == [[ticket_digest(t), s, e] for t, (s, e) in model.items()]
        restored = EndedTickets.from_state(orjson.loads(orjson.dumps(ended.to_state())), max_tickets)
        assert restored.to_state() == ended.to_state()


def test_a_queue_state_saved_with_ticket_ids_loads_and_recognises_them() -> None:
    # What `QueueKpis.to_state` wrote before ended tickets were kept as digests: `closed`, by ticket id.
    fresh = QueueKpis().to_state()
    del fresh["ended"]
    old = {**fresh, "as_of_ms": 5_000, "closed": {"A1": [0b110, 1_000], "A2": [0b100, 2_000]}}
    kpis = QueueKpis.from_state(old)
    assert kpis.to_state()["ended"] == [[ticket_digest("A1"), 0b110, 1_000], [ticket_digest("A2"), 0b100, 2_000]]
