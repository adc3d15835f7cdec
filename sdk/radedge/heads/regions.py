"""Connected regions of a label mask: each lesion measured on its own.

``connected_regions`` splits a uint8 label mask (0 background, i + 1 = label i) into its
8-connected components of one label each (two touching regions of different labels are two
regions) and measures each as the mask decode op measures a label: pixel count, area in mm²,
bounding box and centroid.

No native op labels components, and scipy is not a dependency, so this is numpy over runs: the
mask's horizontal runs of one value (a smooth lesion mask has about two per row it crosses)
are the nodes, runs of the same value in neighbouring rows that touch (8-connectivity: their
column spans overlap or meet at a corner) are joined, and the components are found by
repeated hooking of each edge's larger root under its smaller one with pointer jumping, which
needs a few rounds whatever the shape. Only the rectangle holding every labelled pixel is
scanned. ``tests/heads/test_regions.py`` checks it against a slow flood fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The regions a segmentation result lists, largest first; the rest are counted, not listed.
MAX_REGIONS = 32


@dataclass(frozen=True)
class Runs:
    """Horizontal runs of non-zero mask values, in row-major order: ``rows``, ``starts`` and
    ``ends`` (inclusive) in mask pixels, ``values`` the mask value of each (int64[n] each)."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Component:
    """One connected region: mask ``value`` (1 + label index), ``pixel_count``, ``bbox``
    (x0, y0, x1, y1; x1 / y1 exclusive, mask pixels) and ``centroid`` (x, y; pixel centres
    at integer + 0.5)."""

    value: int
    pixel_count: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]


def mask_runs(mask: np.ndarray, window: tuple[int, int, int, int] | None = None) -> Runs:
    """The runs of ``mask`` (uint8 [rows, columns]) inside ``window`` (x0, y0, x1, y1,
    exclusive; default the whole mask), in whole-mask coordinates."""
    x0, y0, x1, y1 = window if window is not None else (0, 0, mask.shape[1], mask.shape[0])
    part = np.ascontiguousarray(mask[y0:y1, x0:x1])
    empty = np.zeros(0, dtype=np.int64)
    if part.size == 0:
        return Runs(empty, empty, empty, empty)
    width = part.shape[1]
    flat = part.ravel()
    # A run starts where the value changes or a row begins, and ends where the next one starts.
    boundary = np.empty(flat.size, dtype=bool)
    np.not_equal(flat[1:], flat[:-1], out=boundary[1:])
    boundary[::width] = True
    starts = np.flatnonzero(boundary)
    ends = np.r_[starts[1:], flat.size] - 1
    values = flat[starts]
    keep = values != 0
    starts, ends, values = starts[keep], ends[keep], values[keep].astype(np.int64)
    rows = starts // width
    return Runs(rows + y0, starts - rows * width + x0, ends - rows * width + x0, values)


def _touching(runs: Runs, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of runs of the same value in rows r and r + 1 that are 8-connected."""
    stride = width + 2  # a key per (row, column) with room for column -1 and width
    start_keys = runs.rows * stride + runs.starts
    end_keys = runs.rows * stride + runs.ends
    below = (runs.rows + 1) * stride
    # Runs of a row are sorted and disjoint, so the runs below that touch run i form one slice:
    # from the first whose end reaches start - 1 to the last whose start is at most end + 1.
    first = np.searchsorted(end_keys, below + runs.starts - 1, side="left")
    last = np.searchsorted(start_keys, below + runs.ends + 1, side="right")
    counts = np.maximum(last - first, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    upper = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    lower = np.repeat(first, counts) + offsets
    same = runs.values[upper] == runs.values[lower]
    return upper[same], lower[same]


def _components(count: int, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """int64[count]: each run's component, as the smallest run index in it."""
    parent = np.arange(count, dtype=np.int64)
    while True:
        a, b = parent[upper], parent[lower]
        differ = a != b
        if not differ.any():
            return parent
        a, b = a[differ], b[differ]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def connected_components(mask: np.ndarray, window: tuple[int, int, int, int] | None = None) -> list[Component]:
    """Every 8-connected region of one value of ``mask`` (uint8 [rows, columns]) within
    ``window`` (x0, y0, x1, y1, exclusive; it must hold every labelled pixel), largest first
    (ties: lower value, then top, then left)."""
    runs = mask_runs(mask, window)
    if len(runs.rows) == 0:
        return []
    upper, lower = _touching(runs, mask.shape[1])
    roots = _components(len(runs.rows), upper, lower)
    _, component = np.unique(roots, return_inverse=True)
    order = np.argsort(component, kind="stable")
    component = component[order]
    rows, starts, ends, values = runs.rows[order], runs.starts[order], runs.ends[order], runs.values[order]
    first = np.flatnonzero(np.r_[True, component[1:] != component[:-1]])
    lengths = ends - starts + 1
    pixels = np.add.reduceat(lengths, first)
    # Sums over pixel centres: a run covers columns s..e of row r.
    x_sum = np.add.reduceat(lengths * (starts + ends + 1) / 2.0, first)
    y_sum = np.add.reduceat(lengths * (rows + 0.5), first)
    x0, x1 = np.minimum.reduceat(starts, first), np.maximum.reduceat(ends, first) + 1
    y0, y1 = rows[first], np.maximum.reduceat(rows, first) + 1
    found = [
        Component(int(values[f]), int(n), (int(a), int(b), int(c), int(d)), (float(xs / n), float(ys / n)))
        for f, n, a, b, c, d, xs, ys in zip(first, pixels, x0, y0, x1, y1, x_sum, y_sum)
    ]
    found.sort(key=lambda c: (-c.pixel_count, c.value, c.bbox[1], c.bbox[0]))
    return found
