"""Connected regions of a segmentation (radedge.heads.regions) against a slow flood fill, and
the regions a segmentation result lists (one per lesion, largest first, capped)."""

from __future__ import annotations

import pickle
from collections import deque

import numpy as np
import pytest

from radedge.heads import RegionStats, SegmentationResult
from radedge.heads.regions import MAX_REGIONS, connected_components


def flood_fill_components(mask: np.ndarray) -> list[tuple[int, int, tuple[int, int, int, int], tuple[float, float]]]:
    """(value, pixel count, bbox, centroid) of every 8-connected region of one value: the
    obvious breadth-first flood fill, one pixel at a time."""
    rows, columns = mask.shape
    seen = np.zeros(mask.shape, dtype=bool)
    found = []
    for y in range(rows):
        for x in range(columns):
            value = int(mask[y, x])
            if value == 0 or seen[y, x]:
                continue
            seen[y, x] = True
            queue, pixels = deque([(y, x)]), []
            while queue:
                py, px = queue.popleft()
                pixels.append((py, px))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = py + dy, px + dx
                        if 0 <= ny < rows and 0 <= nx < columns and not seen[ny, nx] and mask[ny, nx] == value:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
            ys = np.array([p[0] for p in pixels])
            xs = np.array([p[1] for p in pixels])
            found.append((value, len(pixels), (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                          (float(xs.mean() + 0.5), float(ys.mean() + 0.5))))
    return found


def _same(mask: np.ndarray) -> None:
    mine = connected_components(mask)
    reference = flood_fill_components(mask)
    assert len(mine) == len(reference)
    by_key = {(value, bbox): (count, centroid) for value, count, bbox, centroid in reference}
    assert len(by_key) == len(reference)  # no two reference regions share a value and a box here
    for component in mine:
        count, centroid = by_key[(component.value, component.bbox)]
        assert component.pixel_count == count
        np.testing.assert_allclose(component.centroid, centroid, rtol=1e-12)
    sizes = [component.pixel_count for component in mine]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("seed", range(12))
def test_random_masks_match_the_flood_fill(seed):
    rng = np.random.default_rng(seed)
    rows, columns = rng.integers(1, 48, size=2)
    density = rng.uniform(0.05, 0.7)
    mask = (rng.random((rows, columns)) < density).astype(np.uint8) * rng.integers(1, 4, size=(rows, columns)).astype(
        np.uint8
    )
    mine = connected_components(mask)
    reference = flood_fill_components(mask)
    assert sorted((c.value, c.pixel_count, c.bbox) for c in mine) == sorted((v, n, b) for v, n, b, _ in reference)


def test_diagonal_neighbours_join_and_other_labels_do_not():
    mask = np.zeros((6, 6), np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1  # a diagonal: one region under 8-connectivity
    mask[2, 3] = 2  # touches the diagonal but has another label: its own region
    mask[4, 4] = mask[5, 5] = 1
    found = connected_components(mask)
    assert [(c.value, c.pixel_count, c.bbox) for c in found] == [(1, 3, (0, 0, 3, 3)), (1, 2, (4, 4, 6, 6)),
                                                                  (2, 1, (3, 2, 4, 3))]


def test_shapes_that_join_late_match_the_flood_fill():
    """A comb and a spiral: runs that meet only rows later, through several hops."""
    comb = np.zeros((30, 41), np.uint8)
    comb[:, ::4] = 1
    comb[29, :] = 1
    _same(comb)
    spiral = np.zeros((41, 41), np.uint8)
    top, left, bottom, right = 0, 0, 40, 40
    while top <= bottom and left <= right:
        spiral[top, left:right + 1] = 1
        spiral[top:bottom + 1, right] = 1
        spiral[bottom, left:right + 1] = 1
        spiral[top + 2:bottom + 1, left] = 1
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
        if top <= bottom:
            spiral[top - 1, left - 2] = 1
    _same(spiral)


def _discs(rows, columns, discs):
    yy, xx = np.mgrid[0:rows, 0:columns]
    mask = np.zeros((rows, columns), np.uint8)
    for cx, cy, radius, value in discs:
        mask[(xx - cx) ** 2 + (yy - cy) ** 2 < radius * radius] = value
    return mask


def _result(mask, labels=("lesion",), mm2_per_pixel=0.01):
    summary = []
    for index, label in enumerate(labels):
        ys, xs = np.nonzero(mask == index + 1)
        if len(xs) == 0:
            summary.append(RegionStats(label, 0, 0.0, None, None))
            continue
        summary.append(RegionStats(label, len(xs), len(xs) * mm2_per_pixel,
                                   (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                                   (float(xs.mean() + 0.5), float(ys.mean() + 0.5))))
    return SegmentationResult("lesion", tuple(labels), mask, 0.5, tuple(summary), "PixelSpacing")


def test_two_lesions_are_two_regions_with_their_own_measurements():
    mask = _discs(200, 300, [(60, 60, 30, 1), (220, 140, 45, 1)])
    result = _result(mask)
    assert len(result.regions) == 2 and result.regions_omitted == 0
    big, small = result.regions
    assert big.pixel_count > small.pixel_count
    assert big.bbox == (176, 96, 265, 185) and small.bbox == (31, 31, 90, 90)
    assert big.centroid == pytest.approx((220.5, 140.5)) and small.centroid == pytest.approx((60.5, 60.5))
    assert big.area_mm2 == pytest.approx(big.pixel_count * 0.01)
    # The label's summary still spans both.
    assert result.region("lesion").bbox == (31, 31, 265, 185)
    assert result.region("lesion").pixel_count == big.pixel_count + small.pixel_count
    document = result.to_dict()
    assert len(document["regions"]) == 2 and document["labels_summary"][0]["bbox_xyxy"] == [31, 31, 265, 185]


def test_regions_are_capped_and_the_rest_counted():
    mask = np.zeros((100, 100), np.uint8)
    mask[1::3, 1::3] = 1  # 33 x 33 isolated pixels
    mask[50:60, 50:60] = 1  # one larger region, listed first
    result = _result(mask)
    total = len(connected_components(mask))
    assert len(result.regions) == MAX_REGIONS and result.regions_omitted == total - MAX_REGIONS > 0
    assert result.regions[0].pixel_count == max(r.pixel_count for r in result.regions) > 1


def test_a_result_pickles_its_mask_compactly_and_unchanged():
    mask = _discs(3000, 3000, [(800, 900, 300, 1), (2000, 2100, 500, 1)])
    result = _result(mask)
    data = pickle.dumps(result)
    assert len(data) < 100_000 < mask.nbytes
    back = pickle.loads(data)
    assert np.array_equal(back.mask, mask) and back.mask.dtype == np.uint8 and back == result
    noise = (np.random.default_rng(0).random((64, 64)) < 0.5).astype(np.uint8)  # runs cost more than the mask
    assert np.array_equal(pickle.loads(pickle.dumps(_result(noise))).mask, noise)


def test_a_3000_by_3000_mask_is_split_in_well_under_a_second():
    import time

    mask = _discs(3000, 3000, [(800, 900, 300, 1), (2000, 2100, 500, 1), (1500, 400, 120, 1)])
    started = time.perf_counter()
    found = connected_components(mask)
    elapsed = time.perf_counter() - started
    assert len(found) == 3
    assert elapsed < 2.0, f"{elapsed * 1000:.0f} ms"
