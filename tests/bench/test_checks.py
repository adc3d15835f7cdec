"""The warnings radedge bench prints beside its figures, each on figures made to deserve it
and on figures that do not."""

from __future__ import annotations

import pytest

from radedge.bench.checks import warnings_for
from radedge.bench.runner import _figures


def _item(name="a.dcm", total=None, read=None, baseline=None, cold=None):
    total = total or [10.0] * 30
    read = read or [1.0] * len(total)
    return {
        "name": name, "transfer_syntax": "JPEG 2000 Image Compression (Lossless Only)", "format": "dicom",
        "cold_start": cold, "baseline": baseline,
        "warm": {"stages": {"total": _figures(total), "read": _figures(read)}},
    }


def _document(items, *, load=None, quick=False, concurrency=1, cores=2):
    return {
        "settings": {"quick": quick},
        "load_at_start": load or {"loadavg": {"1min": 0.1, "5min": 0.1, "15min": 0.1}, "busy_fraction": 0.01,
                                  "sampled_s": 0.5, "cores": cores},
        "machine": {"usable_cores": cores},
        "inputs": items,
        "concurrency": [{"threads": level} for level in range(1, concurrency + 1)],
        "errors": [],
    }


def _kinds(document):
    return [warning["kind"] for warning in warnings_for(document)]


def test_steady_rounds_on_an_idle_machine_warn_only_of_the_samples_they_lack():
    assert _kinds(_document([_item()])) == ["few-samples"]
    assert _kinds(_document([_item(total=[10.0] * 1000, read=[1.0] * 1000)])) == []


def test_a_busy_machine_by_load_average_or_by_cores_busy_before_the_start():
    by_load = {"loadavg": {"1min": 1.5, "5min": 1.0, "15min": 1.0}, "busy_fraction": 0.0, "sampled_s": 0.5, "cores": 2}
    by_cores = {"loadavg": {"1min": 0.2, "5min": 0.2, "15min": 0.2}, "busy_fraction": 0.6, "sampled_s": 0.5, "cores": 2}
    for load in (by_load, by_cores):
        warnings = warnings_for(_document([_item()], load=load))
        busy = [w for w in warnings if w["kind"] == "busy-machine"]
        assert len(busy) == 1 and "stop them or rerun" in busy[0]["message"]


def test_noisy_rounds_and_a_tail_set_by_one_round():
    noisy = [5.0, 15.0] * 15  # mean 10, stdev about 5.1: cv 51 %
    assert "noisy" in _kinds(_document([_item(total=noisy)]))
    one_slow = [10.0] * 59 + [25.0]  # max 2.5x the median; cv 19 %, not noisy
    kinds = _kinds(_document([_item(total=one_slow)]))
    assert "tail" in kinds and "noisy" not in kinds
    assert "max 25.0 ms is 2.5x the median 10.0 ms over 60 rounds" in str(warnings_for(_document([_item(total=one_slow)])))


def test_decode_bound_above_80_percent_of_the_time_to_flag():
    assert "decode-bound" in _kinds(_document([_item(total=[100.0] * 30, read=[85.0] * 30)]))
    assert "decode-bound" not in _kinds(_document([_item(total=[100.0] * 30, read=[75.0] * 30)]))


def test_a_baseline_that_decided_differently_or_did_not_run():
    differs = {"decision": {"agree": False, "models": {"bone-tumor": {"agree": False}, "tumor-cls": {"agree": True}}}}
    warnings = warnings_for(_document([_item(baseline=differs)]))
    disagreement = [w for w in warnings if w["kind"] == "baseline-disagrees"]
    assert len(disagreement) == 1 and "bone-tumor" in disagreement[0]["message"]
    assert "tumor-cls" not in disagreement[0]["message"]
    assert "no-baseline" in _kinds(_document([_item(baseline={"error": "not DICOM"})]))
    agrees = {"decision": {"agree": True, "models": {"bone-tumor": {"agree": True}}}}
    assert not {"baseline-disagrees", "no-baseline"} & set(_kinds(_document([_item(baseline=agrees)])))


@pytest.mark.parametrize(("threads", "warned"), [(2, False), (4, True)])
def test_more_threads_than_cores(threads, warned):
    assert ("oversubscribed" in _kinds(_document([_item()], concurrency=threads, cores=2))) is warned


def test_quick_and_a_failed_cold_start_are_said():
    kinds = _kinds(_document([_item(cold={"error": "exited 1"})], quick=True))
    assert {"quick", "cold-start-failed"} <= set(kinds)
    assert kinds.count("few-samples") == 2  # the warm rounds, and one cold start per input
