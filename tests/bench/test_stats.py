"""radedge bench's statistics on samples whose percentiles are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radedge.bench.stats import MIN_SAMPLES, PERCENTILES, min_samples, percentile, summarise

ONE_TO_TEN = [7.0, 1.0, 10.0, 3.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0]  # 1..10, shuffled


def test_each_percentile_of_one_to_ten_by_linear_interpolation():
    # rank h = (n - 1) q / 100 over 1..10: p50 at h = 4.5, between 5 and 6; p90 at h = 8.1, 9 + 0.1 * (10 - 9)
    summary = summarise(ONE_TO_TEN)
    assert summary.percentiles["p50"] == pytest.approx(5.5)
    assert summary.percentiles["p90"] == pytest.approx(9.1)
    assert summary.count == 10
    assert summary.minimum == 1.0 and summary.maximum == 10.0
    assert summary.mean == pytest.approx(5.5)
    # squares of the deviations from 5.5 sum to 82.5; sample variance 82.5 / 9
    assert summary.stdev == pytest.approx(math.sqrt(82.5 / 9))
    assert summary.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)


def test_p99_of_one_to_a_hundred_and_p99_9_of_a_thousand():
    hundred = summarise(range(1, 101))
    assert hundred.percentiles["p50"] == pytest.approx(50.5)  # h = 49.5
    assert hundred.percentiles["p90"] == pytest.approx(90.1)  # h = 89.1: 90 + 0.1
    assert hundred.percentiles["p99"] == pytest.approx(99.01)  # h = 98.01: 99 + 0.01
    assert hundred.percentiles["p99.9"] is None
    thousand = summarise(range(1000))  # 0..999
    assert thousand.percentiles["p99.9"] == pytest.approx(998.001)  # h = 999 * 0.999 = 998.001
    assert thousand.percentiles["p99"] == pytest.approx(989.01)  # h = 989.01


def test_the_samples_each_percentile_needs():
    assert MIN_SAMPLES == {"p50": 2, "p90": 10, "p99": 100, "p99.9": 1000}
    assert min_samples(0) == 1
    assert min_samples(75) == 4
    with pytest.raises(ValueError):
        min_samples(100)


@pytest.mark.parametrize("name", list(PERCENTILES))
def test_a_percentile_is_reported_from_the_samples_it_needs_and_not_one_fewer(name):
    needed = MIN_SAMPLES[name]
    assert summarise(range(needed)).percentiles[name] is not None
    short = summarise(range(needed - 1))
    assert short.percentiles[name] is None
    entry = short.to_dict()["percentiles"][name]
    assert (entry["value"], entry["samples"], entry["needs"]) == (None, needed - 1, needed)
    assert f"needs at least {needed}" in entry["why"]


def test_one_sample_has_a_maximum_but_no_spread_and_no_percentile():
    summary = summarise([4.0])
    assert (summary.count, summary.minimum, summary.maximum, summary.mean) == (1, 4.0, 4.0, 4.0)
    assert summary.stdev is None and summary.cv is None
    assert all(value is None for value in summary.percentiles.values())
    assert summary.median == 4.0


def test_no_samples():
    summary = summarise([])
    assert summary.count == 0
    assert summary.to_dict()["max"] is None
    assert all(entry["value"] is None for entry in summary.to_dict()["percentiles"].values())


def test_percentile_ends_and_refusals():
    ordered = [2.0, 4.0, 8.0]
    assert percentile(ordered, 0) == 2.0
    assert percentile(ordered, 100) == 8.0
    assert percentile(ordered, 25) == pytest.approx(3.0)  # h = 0.5
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(ordered, 101)


@given(st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=300),
       st.floats(min_value=0.0, max_value=100.0))
def test_the_method_is_numpys_default(samples, q):
    assert percentile(sorted(samples), q) == pytest.approx(float(np.percentile(samples, q)), rel=1e-9, abs=1e-9)


def test_the_report_prints_an_unsupported_percentile_as_na_with_its_sample_count():
    from radedge.bench.report import _figure

    figures = summarise([1.0, 2.0, 3.0]).to_dict()
    assert _figure(figures, "p50") == "2.0"
    assert _figure(figures, "p90") == "n/a (3)"
    assert _figure(figures, "max") == "3.0"
