"""read_ahead: the next item is read while the caller holds the current one, in order, errors
handed over per item, and the thread ends with the iteration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from radedge.pipeline import read_ahead

ROOT = Path(__file__).resolve().parents[2]


def test_items_come_in_order_with_their_values_and_read_times():
    outcomes = list(read_ahead(range(5), lambda n: n * n))
    assert [o.item for o in outcomes] == [0, 1, 2, 3, 4]
    assert [o.value for o in outcomes] == [0, 1, 4, 9, 16]
    assert all(o.error is None and o.read_ms >= 0 for o in outcomes)


def test_the_next_item_is_read_while_the_caller_holds_the_current_one():
    started = {n: threading.Event() for n in range(3)}

    def read(n: int) -> int:
        started[n].set()
        return n

    for outcome in read_ahead(range(3), read):
        if outcome.item < 2:
            # The caller has not asked for the next item yet, and it is being read already.
            assert started[outcome.item + 1].wait(5)


def test_an_error_belongs_to_its_item_and_the_rest_are_read():
    def read(n: int) -> int:
        if n == 1:
            raise OSError("unreadable")
        return n

    outcomes = list(read_ahead(range(3), read))
    assert [o.value for o in outcomes] == [0, None, 2]
    assert isinstance(outcomes[1].error, OSError)


def test_an_interrupt_ends_the_iteration_in_the_callers_thread():
    def items():
        yield 1
        raise KeyboardInterrupt

    iterator = read_ahead(items(), lambda n: n)
    assert next(iterator).value == 1
    with pytest.raises(KeyboardInterrupt):
        next(iterator)


def test_stopping_early_ends_the_thread():
    before = threading.active_count()
    for outcome in read_ahead(range(1000), lambda n: n):
        if outcome.item == 3:
            break
    assert threading.active_count() == before


def test_depth_must_be_positive():
    with pytest.raises(ValueError):
        list(read_ahead([1], lambda n: n, depth=0))


def test_an_image_read_ahead_keeps_its_read_time_in_the_result():
    import radedge
    from radedge.io import read_image

    models = radedge.load_models()
    path = ROOT / "tests" / "data" / "transfer_syntaxes" / "explicit_vr_le_mono2.dcm"
    [outcome] = read_ahead([path], read_image)
    analysis = models.predict(outcome.value, label="phantom", read_ms=outcome.read_ms)
    assert analysis.timings_ms["read"] >= outcome.read_ms
    assert analysis.timings_ms["total"] >= outcome.read_ms + analysis.timings_ms["lut"]
    assert analysis.source == "phantom"
