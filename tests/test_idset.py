"""IdSet: a compact set of ids that behaves like a Python set."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.input.idset import IdSet, Visit

ops = st.lists(st.tuples(st.sampled_from(["add", "discard"]), st.integers(0, 60)), max_size=300)


@given(ops=ops)
def test_behaves_like_a_set(ops: list[tuple[str, int]]) -> None:
    ids, model = IdSet(capacity=4), set()
    for op, n in ops:
        sid = f"devin-{n}"
        if op == "add":
            assert ids.add(sid) == (sid not in model)
            model.add(sid)
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
