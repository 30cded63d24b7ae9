"""IdSet: a compact set of ids that behaves like a Python set."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.input.idset import IdSet, Visit

ops = st.lists(
    st.tuples(st.sampled_from(["add", "discard", "add_all"]), st.integers(0, 60)), max_size=300
)


@given(ops=ops)
def test_behaves_like_a_set(ops: list[tuple[str, int]]) -> None:
    ids, model = IdSet(capacity=4), set()
    for op, n in ops:
        sid = f"devin-{n}"
        if op == "add":
            assert ids.add(sid) == (sid not in model)
            model.add(sid)
        elif op == "add_all":  # n ids at once, one of them twice
            batch = [f"devin-{k}" for k in range(n, 2 * n + 1)] + [sid]
            ids.add_all(batch)
            model.update(batch)
        else:
            ids.discard(sid)
            model.discard(sid)
        assert len(ids) == len(model)
    for n in range(61):
        assert (f"devin-{n}" in ids) == (f"devin-{n}" in model)


def test_grows_past_its_first_capacity() -> None:
    ids = IdSet()
    assert all(ids.add(f"devin-{n}") for n in range(5000))
    assert not ids.add("devin-4999") and len(ids) == 5000 and "devin-0" in ids


def test_visit_tells_new_settled_and_duplicate_apart() -> None:
    ids = IdSet()
    ids.add("devin-old")
    assert ids.visit("devin-old") is Visit.SETTLED
    assert ids.visit("devin-old") is Visit.DUPLICATE
    assert ids.visit("devin-new") is Visit.NEW
    assert ids.visit("devin-new") is Visit.DUPLICATE
    assert not ids.add("devin-new") and len(ids) == 2
    for n in range(3000):  # growth keeps the marks
        ids.visit(f"devin-{n}")
    assert ids.visit("devin-old") is Visit.DUPLICATE and ids.visit("devin-2999") is Visit.DUPLICATE


def test_churn_through_discard_neither_hangs_nor_grows() -> None:
    ids = IdSet()
    slots = len(ids._slots)
    for n in range(20_000):  # each discard leaves a tombstone: ten times the table's slots
        assert ids.add(f"devin-{n}")
        ids.discard(f"devin-{n}")
    assert len(ids) == 0 and "devin-0" not in ids
    assert len(ids._slots) == slots  # rebuilt in place: tombstones are no reason to grow
    assert ids.visit("devin-7") is Visit.NEW and ids.add("devin-8") and len(ids) == 2


def test_made_for_a_log_it_holds_a_line_each_without_growing() -> None:
    ids = IdSet.for_lines(10_000)
    table = ids._slots
    assert all(ids.add(f"devin-{n}") for n in range(10_000))
    assert ids._slots is table and len(table) * 8 / len(ids) < 11.5  # bytes an id
    assert ids.visit("devin-9999") is Visit.SETTLED and ids.visit("devin-x") is Visit.NEW
    assert ids._slots is not table and "devin-0" in ids and len(ids) == 10_001  # grown
