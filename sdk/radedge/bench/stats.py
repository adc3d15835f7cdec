"""Latency statistics: percentiles that say how many samples stand behind them.

One method throughout: linear interpolation between the closest ranks, numpy's default
(``numpy.percentile(..., method="linear")``, Hyndman & Fan 1996 type 7). For ``n`` sorted
samples ``x[0] <= ... <= x[n - 1]`` the q-th percentile is read at rank
``h = (n - 1) * q / 100``: ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.

A percentile is reported only when the samples support it: the q-th percentile needs at
least ``100 / (100 - q)`` samples (``MIN_SAMPLES``: p50 2, p90 10, p99 100, p99.9 1000), so
that at least one sample lies above it. With fewer, interpolation only spreads the largest
samples, and what would be printed as the p99 of 30 rounds is their maximum wearing another
name. Such a percentile is ``None`` in the figures, with the reason beside it, and
``n/a (30)`` in the report (``radedge.bench.report``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The percentiles every summary carries, by name.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}

METHOD = ("linear interpolation between closest ranks (numpy.percentile's default, Hyndman & Fan type 7); "
          "the q-th percentile is reported only from 100 / (100 - q) samples up")


def min_samples(q: float) -> int:
    """How many samples the q-th percentile needs: ``ceil(100 / (100 - q))``, 1 for q = 0.
    (Rounded before the ceiling, so 100 / 0.1 stays 1000 and does not become 1001.)"""
    if not 0.0 <= q < 100.0:
        raise ValueError(f"a percentile below 100 is needed here; got {q!r} (the 100th is the maximum)")
    return max(1, math.ceil(round(100.0 / (100.0 - q), 9)))


#: The samples each of ``PERCENTILES`` needs.
MIN_SAMPLES: dict[str, int] = {name: min_samples(q) for name, q in PERCENTILES.items()}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of ``ordered`` (sorted ascending, not empty), by
    linear interpolation between the closest ranks (module docstring)."""
    if not ordered:
        raise ValueError("no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"a percentile is between 0 and 100; got {q!r}")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True)
class Summary:
    """What ``count`` samples say: ``mean``, ``stdev`` (sample standard deviation, None below
    2 samples), ``cv`` (stdev / mean), ``minimum``, ``maximum``, and ``percentiles`` by name
    (``PERCENTILES``), each None when the samples do not support it (``MIN_SAMPLES``).
    Every figure is None for no samples."""

    count: int
    mean: float | None
    stdev: float | None
    minimum: float | None
    maximum: float | None
    percentiles: dict[str, float | None]

    @property
    def cv(self) -> float | None:
        """Coefficient of variation, stdev / mean: how noisy the samples are, whatever their unit."""
        if self.stdev is None or not self.mean:
            return None
        return self.stdev / self.mean

    @property
    def median(self) -> float | None:
        return self.percentiles["p50"] if self.count != 1 else self.minimum

    def to_dict(self) -> dict:
        """The summary as JSON: each percentile with the samples behind it and the samples it
        needs, and, when it is not reported, why."""
        percentiles = {}
        for name, figure in self.percentiles.items():
            entry = {"value": figure, "samples": self.count, "needs": MIN_SAMPLES[name]}
            if figure is None:
                entry["why"] = (f"not reported: {self.count} sample{'' if self.count == 1 else 's'}, "
                                f"{name} needs at least {MIN_SAMPLES[name]}")
            percentiles[name] = entry
        return {
            "count": self.count,
            "mean": self.mean,
            "stdev": self.stdev,
            "cv": self.cv,
            "min": self.minimum,
            "max": self.maximum,
            "percentiles": percentiles,
        }


def summarise(samples: Iterable[float]) -> Summary:
    """``samples`` (any order) summarised; see ``Summary``."""
    ordered = sorted(float(sample) for sample in samples)
    count = len(ordered)
    if count == 0:
        return Summary(0, None, None, None, None, {name: None for name in PERCENTILES})
    return Summary(
        count=count,
        mean=statistics.fmean(ordered),
        stdev=statistics.stdev(ordered) if count >= 2 else None,
        minimum=ordered[0],
        maximum=ordered[-1],
        percentiles={name: percentile(ordered, q) if count >= MIN_SAMPLES[name] else None
                     for name, q in PERCENTILES.items()},
    )
