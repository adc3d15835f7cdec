"""Region outlines without OpenCV: the regions against a flood-fill reference, the traced boundary
against OpenCV's border following where OpenCV is installed, and the simplified outlines (what the
presentation state draws) closed, ordered and within 1 pixel of the mask's boundary."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from radedge.dicom_out import contours
from radedge.dicom_out.gsps import outlines

def _blobs(rng: np.random.Generator, rows: int, columns: int, count: int) -> np.ndarray:
    """A mask of a few overlapping random ellipses and specks."""
    mask = np.zeros((rows, columns), dtype=bool)
    yy, xx = np.mgrid[:rows, :columns]
    for _ in range(count):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, columns)
        ry, rx = rng.uniform(1, rows / 4), rng.uniform(1, columns / 4)
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    mask[rng.integers(0, rows, 5), rng.integers(0, columns, 5)] = True
    return mask


def _flood_regions(mask: np.ndarray) -> list[tuple[tuple[int, int], int]]:
    """((column, row) of the first pixel, pixel count) of each 8-connected region, by flood fill."""
    seen = np.zeros_like(mask)
    found = []
    for row, column in zip(*np.nonzero(mask)):
        if seen[row, column]:
            continue
        seen[row, column] = True
        queue, count = deque([(row, column)]), 0
        while queue:
            r, c = queue.popleft()
            count += 1
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        found.append(((int(column), int(row)), count))
    return found


def _boundary(mask: np.ndarray) -> np.ndarray:
    """bool: region pixels with a 4-neighbour outside the region (or the image)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    best = np.full(len(points), np.inf)
    for start, end in zip(polyline[:-1], polyline[1:]):
        along = end - start
        length = along @ along
        t = np.clip(((points - start) @ along) / length, 0, 1) if length else np.zeros(len(points))
        best = np.minimum(best, np.hypot(*(points - start - t[:, None] * along).T))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_regions_are_the_8_connected_components(seed):
    rng = np.random.default_rng(seed)
    rows, columns = rng.integers(1, 40, 2)
    mask = rng.random((rows, columns)) < rng.uniform(0.1, 0.9)
    found = contours.regions(mask)
    assert [(region.first, region.pixel_count) for region in found] == _flood_regions(mask)
    for region in found:
        column0, row0, column1, row1 = region.bbox
        assert mask[row0:row1 + 1, column0:column1 + 1].sum() >= region.pixel_count
        assert region.first[1] == row0 and column0 <= region.first[0] <= column1


@pytest.mark.parametrize("seed", range(40))
def test_traced_boundary_is_opencvs_outer_border(seed):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    mask = rng.random(tuple(rng.integers(1, 40, 2))) < rng.uniform(0.1, 0.9)
    # RETR_LIST: every border, nested regions' outer borders included; each starts at its first pixel.
    borders, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    by_start = {tuple(border[0, 0]): border.reshape(-1, 2) for border in borders}
    for region in contours.regions(mask):
        np.testing.assert_array_equal(contours.trace_boundary(mask, region), by_start[region.first])


@pytest.mark.parametrize("seed", range(12))
def test_outlines_are_closed_ordered_and_within_a_pixel_of_the_boundary(seed):
    mask = _blobs(np.random.default_rng(seed), 160, 200, 6)
    boundary_pixels = np.argwhere(_boundary(mask))[:, ::-1] + 0.5  # (x, y) centres
    drawn = outlines(mask, max_points=10_000)
    assert len(drawn) == len(contours.regions(mask))
    areas = [contours.polygon_area(outline[:-1]) for outline in drawn]
    assert areas == sorted(areas, reverse=True)
    near_any = np.full(len(boundary_pixels), np.inf)
    for outline in drawn:
        assert np.array_equal(outline[0], outline[-1])
        vertices = outline[:-1]
        # Vertices are boundary pixel centres, met in the traced order (counter-clockwise).
        column, row = np.floor(vertices).astype(int).T
        assert np.all(vertices - np.floor(vertices) == 0.5) and _boundary(mask)[row, column].all()
        region = next(r for r in contours.regions(mask) if r.first == (column[0], row[0]))
        traced = [tuple(point) for point in contours.trace_boundary(mask, region)]
        # A pixel where the region is one pixel thin is traced twice: look for each vertex after the last.
        position = -1
        for vertex in zip(column, row):
            position = traced.index(vertex, position + 1)  # ValueError: out of order
        assert traced[0] == (column[0], row[0])
        # Every point of its traced boundary lies within the 1-pixel tolerance of the outline.
        assert _distance_to_polyline(np.asarray(traced) + 0.5, outline).max() <= 1.0 + 1e-9
        near_any = np.minimum(near_any, _distance_to_polyline(boundary_pixels, outline))
    # Boundary pixels not on any traced outer boundary are hole borders, left undrawn.
    holes_filled = ~_outside(mask)
    outer = _boundary(holes_filled) & mask
    assert near_any[outer[tuple(np.floor(boundary_pixels[:, ::-1]).astype(int).T)]].max() <= 1.0 + 1e-9


def _outside(mask: np.ndarray) -> np.ndarray:
    """bool: background 4-connected to the image's border."""
    padded = ~np.pad(mask, 1)
    reached = np.zeros_like(padded)
    reached[0, 0] = True
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= padded
        if np.array_equal(grown, reached):
            return reached[1:-1, 1:-1]
        reached = grown


def test_a_region_inside_a_hole_has_its_own_outline():
    yy, xx = np.mgrid[:80, :80]
    distance = np.hypot(yy - 40, xx - 40)
    mask = (distance < 30) & (distance >= 20) | (distance < 5)
    drawn = outlines(mask)
    assert len(drawn) == 2
    ring, dot = (contours.polygon_area(outline[:-1]) for outline in drawn)
    assert 2500 < ring < np.pi * 30**2 and 50 < dot < np.pi * 5**2


def test_a_capped_outline_doubles_its_tolerance():
    comb = np.zeros((60, 200), dtype=bool)
    comb[10:50, 10:190] = True
    comb[10:40, 10:190:2] = False
    (outline,) = outlines(comb, max_points=32)
    assert 3 <= len(outline) <= 32
    (finer,) = outlines(comb, max_points=10_000)
    assert len(finer) > 32


def test_a_one_pixel_region_is_a_zero_length_line():
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 3] = True
    (outline,) = outlines(mask)
    np.testing.assert_array_equal(outline, [[3.5, 2.5], [3.5, 2.5]])
