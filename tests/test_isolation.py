"""``IsolatedWorker``: a call's value or exception crosses back unchanged; a call that outruns
its time limit, exhausts its memory cap or crashes its process gives a typed error, and the
next call gets a new worker."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from radedge._isolation import IsolatedWorker
from radedge.errors import (
    CodestreamMismatchError,
    InputError,
    MemoryBudgetExceededError,
    TimeBudgetExceededError,
    WorkerCrashedError,
)
from tests import isolation_targets as targets


@pytest.fixture(scope="module")
def worker():
    with IsolatedWorker(memory_limit_bytes=512 << 20) as shared:
        yield shared


def test_values_and_arrays_cross_unchanged(worker):
    assert worker.call(targets.echo, {"a": [1, 2.5, "x"]}).value == {"a": [1, 2.5, "x"]}
    for rows, columns in ((3, 4), (2000, 2000)):  # inline, and through shared memory
        result = worker.call(targets.array, rows, columns)
        np.testing.assert_array_equal(result.value, targets.array(rows, columns))
        assert result.value.flags.writeable
        assert result.seconds >= 0 and result.peak_rss_bytes > 0


def test_a_call_past_its_time_limit_is_stopped_and_the_next_call_runs(worker):
    start = time.perf_counter()
    with pytest.raises(TimeBudgetExceededError) as caught:
        worker.call(targets.spin, time_limit_s=0.5)
    assert 0.5 <= time.perf_counter() - start < 5
    assert caught.value.limit == 0.5 and isinstance(caught.value, InputError)
    assert worker.call(targets.sleep, 0.01, time_limit_s=30).value == "awake"


def test_an_allocation_past_the_memory_cap_fails_typed(worker):
    with pytest.raises(MemoryBudgetExceededError) as caught:
        worker.call(targets.allocate, 2048)
    assert caught.value.limit == 512 << 20
    assert worker.call(targets.allocate, 64).value == 64 << 20


@pytest.mark.parametrize(
    ("target", "args", "says"),
    [
        (targets.segfault, (), "SIGSEGV"),
        (targets.killed_by, (targets.SIGTERM,), "SIGTERM"),
        (targets.exits, (), "exited with status 3"),
    ],
)
def test_a_worker_that_dies_gives_a_typed_error_and_is_replaced(worker, target, args, says):
    with pytest.raises(WorkerCrashedError, match=says) as caught:
        worker.call(target, *args, time_limit_s=30)
    if says.startswith("SIG"):
        assert caught.value.exit_code == -getattr(signal, says)
    assert worker.call(targets.echo, 7).value == 7


def test_exceptions_cross_with_their_type_and_fields(worker):
    with pytest.raises(ValueError, match="plain ValueError"):
        worker.call(targets.raises_value_error)
    with pytest.raises(CodestreamMismatchError) as caught:
        worker.call(targets.raises_typed)
    assert (caught.value.attribute, caught.value.dicom_value, caught.value.codestream_value) == ("Rows", 512, 4194604)
    with pytest.raises(RuntimeError, match="_Unpicklable: carries a lock"):
        worker.call(targets.raises_unpicklable)


def test_a_failing_initializer_is_raised_at_the_first_call():
    with IsolatedWorker(initializer=targets.failing_initializer) as broken:
        with pytest.raises(RuntimeError, match="the initializer failed"):
            broken.call(targets.echo, 1)
