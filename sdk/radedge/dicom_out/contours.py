"""Outlines of mask regions for drawing: 8-connected regions, their outer boundaries traced in
order, simplified with Douglas-Peucker.

``regions``: the connected regions of a bool mask from its row runs (a run is a maximal
horizontal stretch of True pixels; runs in adjacent rows that touch, diagonally included, join),
so the cost follows the number of runs, not of pixels. ``trace_boundary``: the outer boundary of
one region as Suzuki and Abe's border following gives it (S. Suzuki, K. Abe, "Topological
structural analysis of digitized binary images by border following", CVGIP 30(1), 1985,
algorithm 1, an outer border): from the region's first pixel in raster order, counter-clockwise
on the screen (down its left side first), through every boundary pixel, a pixel visited twice
where the region is one pixel thin. ``simplify_closed``: Douglas-Peucker on the closed curve.
Coordinates are (column, row) of pixels; callers add 0.5 for their centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """One 8-connected region of a mask.

    ``first``: (column, row) of its first pixel in raster order (a boundary pixel: nothing of
    the region lies above it or to its left in its row). ``pixel_count``: its pixels.
    ``bbox``: (column0, row0, column1, row1), inclusive.
    """

    first: tuple[int, int]
    pixel_count: int
    bbox: tuple[int, int, int, int]


def regions(mask: np.ndarray) -> list[Region]:
    """The 8-connected regions of ``mask`` (bool [rows, columns]), in raster order of their first pixels."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"regions expects a 2-D mask; got shape {mask.shape}")
    rows, columns = mask.shape
    stride = columns + 2
    padded = np.zeros((rows, stride), dtype=bool)
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    # Every row starts and ends False, so the changes alternate: a run's first pixel, the pixel
    # after its last. Keys are flat positions in ``padded``: rows never interleave.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if changes.size == 0:
        return []
    start_keys, end_keys = changes[0::2], changes[1::2]
    run_rows = start_keys // stride
    starts = start_keys - run_rows * stride - 1
    ends = end_keys - run_rows * stride - 1  # exclusive
    # Run a in row r touches run b in row r + 1 (8-connected) when b.start <= a.end and
    # a.start <= b.end; in a row the runs are sorted and disjoint, so those b are consecutive.
    low = np.searchsorted(end_keys, start_keys + stride, side="left")
    high = np.searchsorted(start_keys, end_keys + stride, side="right")
    counts = np.maximum(high - low, 0)
    upper = np.repeat(np.arange(run_rows.size), counts)
    lower = np.repeat(low - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    root = _components(run_rows.size, upper, lower)
    lengths = ends - starts
    labels, first_runs = np.unique(root, return_index=True)
    index = np.searchsorted(labels, root)
    pixel_counts = np.bincount(index, weights=lengths).astype(np.int64)
    column0 = np.full(labels.size, columns, dtype=np.int64)
    column1 = np.full(labels.size, -1, dtype=np.int64)
    row1 = np.full(labels.size, -1, dtype=np.int64)
    np.minimum.at(column0, index, starts)
    np.maximum.at(column1, index, ends - 1)
    np.maximum.at(row1, index, run_rows)
    return [
        Region((int(starts[run]), int(run_rows[run])), int(pixel_counts[k]),
               (int(column0[k]), int(run_rows[run]), int(column1[k]), int(row1[k])))
        for k, run in enumerate(first_runs)
    ]


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int64 [count]: for each node, the smallest node of its connected component, over the
    undirected edges ``a[i]`` - ``b[i]`` (hooking roots onto smaller roots, then pointer jumping)."""
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(root_a, root_b)[differ], np.minimum(root_a, root_b)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def trace_boundary(mask: np.ndarray, region: Region) -> np.ndarray:
    """int64 [n, 2]: (column, row) of ``region``'s outer boundary pixels in ``mask`` (bool
    [rows, columns]) in order, from ``region.first``, counter-clockwise on the screen; not closed
    (the last point is a neighbour of the first). One point for a one-pixel region."""
    column0, row0, column1, row1 = region.bbox
    window = np.zeros((row1 - row0 + 3, column1 - column0 + 3), dtype=np.uint8)
    window[1:-1, 1:-1] = mask[row0:row1 + 1, column0:column1 + 1]
    width = window.shape[1]
    grid = window.tobytes()
    # Chain-code directions 0..7: right, up-right, up, up-left, left, down-left, down, down-right,
    # twice over so that a search may run eight steps from any direction.
    deltas = (1, 1 - width, -width, -1 - width, -1, width - 1, width, width + 1) * 2
    first = (region.first[1] - row0 + 1) * width + region.first[0] - column0 + 1
    # The first neighbour clockwise from the left one (empty, as nothing precedes ``first``).
    direction = 4
    while True:
        direction = (direction - 1) & 7
        second = first + deltas[direction]
        if grid[second] or direction == 4:
            break
    if direction == 4:
        points = [first]
    else:
        points = []
        current = first
        while True:
            # Counter-clockwise from the direction after the one back to the previous pixel.
            while True:
                direction += 1
                following = current + deltas[direction]
                if grid[following]:
                    break
            direction &= 7
            points.append(current)
            if following == first and current == second:
                break
            current = following
            direction = (direction + 4) & 7
    flat = np.asarray(points, dtype=np.int64)
    return np.stack([flat % width - 1 + column0, flat // width - 1 + row0], axis=1)


def simplify_closed(points: np.ndarray, tolerance: float) -> np.ndarray:
    """The vertices (a subset of ``points``, float64 [m, 2], in their order) of a closed
    polygon within ``tolerance`` of the closed curve through ``points`` (float [n, 2]): every
    point lies within ``tolerance`` of an edge. Douglas-Peucker, the curve cut at its first point
    and the point farthest from it; a curve whose points all lie within ``tolerance`` of the
    first gives that point alone."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        return points.copy()
    reach = np.hypot(*(points - points[0]).T)
    farthest = int(np.argmax(reach))
    if reach[farthest] <= tolerance:
        return points[:1].copy()
    there = _simplify_open(points[:farthest + 1], tolerance)
    back = _simplify_open(np.concatenate([points[farthest:], points[:1]]), tolerance) + farthest
    return points[np.concatenate([there[:-1], back[:-1]])]


def _simplify_open(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices into ``points`` (float64 [n, 2], n >= 2) of the Douglas-Peucker simplification of
    the open curve through them, both ends kept."""
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    pending = [(0, len(points) - 1)]
    while pending:
        first, last = pending.pop()
        if last - first < 2:
            continue
        distance = _distance_to_segment(points[first + 1:last], points[first], points[last])
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            split = first + 1 + worst
            keep[split] = True
            pending += [(first, split), (split, last)]
    return np.flatnonzero(keep)


def _distance_to_segment(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """float64 [n]: each point's distance to the segment ``start``-``end`` (a point when they coincide)."""
    along = end - start
    length_squared = float(along @ along)
    offset = points - start
    if length_squared == 0.0:
        return np.hypot(offset[:, 0], offset[:, 1])
    t = np.clip((offset @ along) / length_squared, 0.0, 1.0)
    nearest = offset - t[:, None] * along
    return np.hypot(nearest[:, 0], nearest[:, 1])


def polygon_area(points: np.ndarray) -> float:
    """The area enclosed by the closed polygon through ``points`` (float [n, 2]), shoelace formula."""
    x, y = np.asarray(points, dtype=np.float64).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)
