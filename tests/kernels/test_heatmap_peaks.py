"""The heatmap peaks op against the Python reference, on synthetic peaks with known
sub-cell centres, on the tie, edge and padding rules, across thread counts, dtypes and
devices, and on the inputs it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.ops.heatmap_peaks import Peaks, find_argmax, find_peaks
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..helpers import cpu_and_cuda, geometry_of, least_geometry
from . import reference_heatmap_peaks as reference

LOWEST = float(np.finfo(np.float32).min)


def _check(heatmaps, geometry, input_size, *, mode="peaks", k=4, threshold=0.5, radius=1, activation="none",
           refine=True, threads=0, device="cpu") -> Peaks:
    """Runs the op and asserts it equals the reference; returns the op's peaks."""
    if mode == "peaks":
        got = find_peaks(heatmaps, geometry, input_size=input_size, threshold=threshold, k=k, radius=radius,
                         activation=activation, refine=refine, threads=threads, device=device)
    else:
        got = find_argmax(heatmaps, geometry, input_size=input_size, activation=activation, refine=refine,
                          threads=threads, device=device)
        k = 1
    placed = dict(geometry, input_height=input_size[0], input_width=input_size[1])
    x, y, score, valid = reference.heatmap_peaks(heatmaps, placed, mode, k, threshold, radius, activation, refine)
    assert got.x.dtype == got.y.dtype == got.score.dtype == np.float32 and got.valid.dtype == np.int32
    assert got.x.shape == got.y.shape == got.score.shape == heatmaps.shape[:2] + (k,)
    np.testing.assert_array_equal(got.valid, valid)
    # NaN past valid on both sides; positions to float32 rounding of the float64 reference.
    np.testing.assert_allclose(got.x, x, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got.y, y, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got.score, score, rtol=1e-6, atol=0)
    # Refined positions never leave the source region that fills the content.
    for axis, values in (("x", got.x), ("y", got.y)):
        size = {"x": "content_width", "y": "content_height"}[axis]
        first = geometry.get(f"crop_{axis}", 0)
        last = first + geometry[size] / geometry[f"scale_{axis}"]
        found = values[~np.isnan(values)]
        assert (found >= first - 1e-3).all() and (found <= last * (1 + 1e-6) + 1e-3).all()
    return got


def _blobs(rng, n, c, h, w, count=6, dtype=np.float32):
    """Sums of Gaussian blobs with random centres, widths and heights, plus faint noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    maps = np.zeros((n, c, h, w))
    for index in np.ndindex(n, c):
        for _ in range(count):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            sigma, height = rng.uniform(0.7, 3.0), rng.uniform(0.2, 1.0)
            maps[index] += height * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    maps += rng.normal(0, 0.01, maps.shape)
    return maps.astype(dtype)


# --- against the reference ----------------------------------------------------------------


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "rows, columns, input_h, input_w, grid_h, grid_w",
    [
        (3000, 2000, 256, 256, 64, 64),  # letterbox: padding left and right
        (1000, 3000, 256, 256, 64, 64),  # padding above and below
        (517, 517, 128, 128, 32, 32),  # square: no padding
        (700, 900, 96, 160, 31, 45),  # grid not a divisor of the input
        (640, 480, 256, 256, 256, 256),  # grid at input resolution
        (9, 2000, 64, 64, 16, 16),  # content one cell high
    ],
)
def test_matches_reference_on_letterboxed_blobs(device, dtype, rows, columns, input_h, input_w, grid_h, grid_w):
    rng = np.random.default_rng(rows + columns + grid_h)
    spec = PreprocessSpec(input_h, input_w, "letterbox")
    geometry = resize_geometry(rows, columns, spec).as_dict()
    maps = _blobs(rng, 2, 3, grid_h, grid_w, dtype=dtype)
    for activation, threshold in (("none", 0.3), ("sigmoid", 0.55)):
        _check(maps, geometry, (input_h, input_w), k=5, threshold=threshold, activation=activation, device=device)
    _check(maps, geometry, (input_h, input_w), mode="argmax", device=device)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    input_h=st.integers(1, 80),
    input_w=st.integers(1, 80),
    data=st.data(),
    levels=st.sampled_from([3, 8, 0]),
    dtype=st.sampled_from([np.float32, np.float16]),
    k=st.integers(1, 8),
    radius=st.integers(1, 3),
    activation=st.sampled_from(["none", "sigmoid"]),
    mode=st.sampled_from(["peaks", "argmax"]),
    refine=st.booleans(),
    per_channel=st.booleans(),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_property(n, c, h, w, input_h, input_w, data, levels, dtype, k, radius, activation, mode,
                                    refine, per_channel, threads, seed):
    rng = np.random.default_rng(seed)
    content_h = data.draw(st.integers(1, input_h))
    content_w = data.draw(st.integers(1, input_w))
    crop_h, crop_w = data.draw(st.integers(1, 5000)), data.draw(st.integers(1, 5000))
    crop_y, crop_x = data.draw(st.integers(0, 300)), data.draw(st.integers(0, 300))
    geometry = dict(
        geometry_of(crop_y + crop_h, crop_x + crop_w, input_h, input_w, crop=(crop_x, crop_y, crop_w, crop_h)),
        content_height=content_h, content_width=content_w,
        offset_y=data.draw(st.integers(0, input_h - content_h)), offset_x=data.draw(st.integers(0, input_w - content_w)),
        scale_y=content_h / crop_h, scale_x=content_w / crop_w,
    )
    # Few levels make plateaus and ties everywhere; 0 means continuous values.
    if levels:
        maps = rng.integers(0, levels, (n, c, h, w)).astype(np.float64) / levels * 4 - 2
    else:
        maps = rng.normal(0, 1.5, (n, c, h, w))
    maps = maps.astype(dtype)
    if activation == "sigmoid":
        threshold = rng.uniform(0, 0.95, c if per_channel else 1)
    else:
        threshold = rng.uniform(-2, 2, c if per_channel else 1)
    _check(maps, geometry, (input_h, input_w), mode=mode, k=k, threshold=threshold, radius=radius,
           activation=activation, refine=refine, threads=threads)


# --- positions ------------------------------------------------------------------------------


def test_quadratic_peak_is_located_exactly():
    """The three-point fit is exact for a paraboloid, so the source position is exact too."""
    geometry = resize_geometry(1200, 800, PreprocessSpec(256, 256, "letterbox")).as_dict()
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    # Centres in cells, inside the content (cells 10..52 across; all rows).
    centres = [(30.37, 20.71), (12.2, 40.9), (50.05, 33.5)]
    maps = np.stack([100.0 - (xx - cx) ** 2 - 1.7 * (yy - cy) ** 2 for cx, cy in centres])[None].astype(np.float32)
    peaks = find_peaks(maps, geometry, input_size=(256, 256), threshold=50.0, k=1)
    assert (peaks.valid == 1).all()
    cell = 256 / 64
    expected_x = [(cx * cell - geometry["offset_x"]) / geometry["scale_x"] for cx, _ in centres]
    expected_y = [(cy * cell - geometry["offset_y"]) / geometry["scale_y"] for _, cy in centres]
    # float32 values near 100 limit the fit to about 1e-5 cells; a cell is 18.7 source pixels.
    np.testing.assert_allclose(peaks.x[0, :, 0], expected_x, atol=2e-3)
    np.testing.assert_allclose(peaks.y[0, :, 0], expected_y, atol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.5, 4.0])
def test_gaussian_centres_within_the_documented_bias(dtype, sigma):
    """On a sampled Gaussian the parabola fit is biased towards the cell centre; the bias is
    largest at a quarter cell and shrinks as the Gaussian widens. Refinement must beat the
    cell centre everywhere and stay within the analytic bound of the fit."""
    rng = np.random.default_rng(int(sigma * 10))
    h = w = 48
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    centres = rng.uniform(12, 36, (40, 2))
    maps = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)) for cx, cy in centres])
    geometry = geometry_of(48, 48, 48, 48)
    refined = find_peaks(maps[None].astype(dtype), geometry, input_size=(48, 48), threshold=0.5, k=1)
    unrefined = find_peaks(maps[None].astype(dtype), geometry, input_size=(48, 48), threshold=0.5, k=1, refine=False)
    error = np.hypot(refined.x[0, :, 0] - centres[:, 0], refined.y[0, :, 0] - centres[:, 1])
    error_unrefined = np.hypot(unrefined.x[0, :, 0] - centres[:, 0], unrefined.y[0, :, 0] - centres[:, 1])

    # The fit's own error per axis, for a true offset d in [-0.5, 0.5] on exact samples.
    def fit_error(d):
        f = np.exp(-((np.array([-1.0, 0.0, 1.0]) - d) ** 2) / (2 * sigma**2))
        return abs((f[2] - f[0]) / (2 * (2 * f[1] - f[2] - f[0])) - d)

    bound = max(fit_error(d) for d in np.linspace(-0.5, 0.5, 201)) * math.sqrt(2)
    # float16 rounds the samples by up to 2^-11; the fit divides that by the curvature
    # (about 1 / sigma^2).
    slack = 2.0**-10 * sigma**2 if dtype == np.float16 else 1e-5
    assert error.max() <= bound + slack, (error.max(), bound)
    assert error.mean() < error_unrefined.mean()


# --- ties, plateaus, edges, padding ----------------------------------------------------------


def test_flat_top_gives_one_peak_at_its_first_cell():
    maps = np.zeros((1, 3, 12, 12), np.float32)
    maps[0, 0, 4:6, 5:7] = 1.0  # 2 x 2 top, radius 1
    maps[0, 1, 3:8, 2:9] = 1.0  # 5 x 7 rectangle, larger than the window
    maps[0, 2, 5, 5] = maps[0, 2, 6, 4] = 1.0  # diagonal pair
    peaks = find_peaks(maps, geometry_of(12, 12, 12, 12), input_size=(12, 12), threshold=0.5, k=4, refine=False)
    np.testing.assert_array_equal(peaks.valid, [[1, 1, 1]])
    np.testing.assert_allclose(peaks.points(0, 0)[0, :2], [5.5, 4.5])  # centre of cell (y=4, x=5)
    np.testing.assert_allclose(peaks.points(0, 1)[0, :2], [2.5, 3.5])
    np.testing.assert_allclose(peaks.points(0, 2)[0, :2], [5.5, 5.5])
    # Refined, the first cell of the 2 x 2 top moves half a cell towards its equal
    # neighbours on each axis: to the centre of the top.
    refined = find_peaks(maps, geometry_of(12, 12, 12, 12), input_size=(12, 12), threshold=0.5, k=4)
    np.testing.assert_allclose(refined.points(0, 0)[0, :2], [6.0, 5.0])


def test_a_ridge_bent_upwards_gives_one_peak_per_arm():
    """The documented limit of the tie rule: a U-shaped flat ridge has two cells with no
    equal cell before them in their window."""
    maps = np.zeros((1, 1, 8, 8), np.float32)
    maps[0, 0, 2:5, 2] = maps[0, 0, 4, 2:5] = maps[0, 0, 2:5, 4] = 1.0
    peaks = find_peaks(maps, geometry_of(8, 8, 8, 8), input_size=(8, 8), threshold=0.5, k=4, refine=False)
    assert peaks.valid[0, 0] == 2
    np.testing.assert_allclose(peaks.points()[:, :2], [[2.5, 2.5], [4.5, 2.5]])


def test_equal_peaks_are_ranked_by_raster_index():
    maps = np.zeros((1, 1, 10, 10), np.float32)
    for y, x in ((7, 1), (1, 8), (1, 2), (4, 4)):
        maps[0, 0, y, x] = 0.9
    peaks = find_peaks(maps, geometry_of(10, 10, 10, 10), input_size=(10, 10), threshold=0.5, k=3, refine=False)
    assert peaks.valid[0, 0] == 3
    np.testing.assert_allclose(peaks.points()[:, :2], [[2.5, 1.5], [8.5, 1.5], [4.5, 4.5]])


def test_peak_on_the_edge_is_found_and_not_refined_across_it():
    maps = np.zeros((1, 1, 9, 9), np.float32)
    maps[0, 0, 0, 4] = 1.0
    maps[0, 0, 1, 4] = 0.9  # would pull y downwards if the edge were refined
    maps[0, 0, 0, 5] = 0.5  # pulls x right: refined, both neighbours exist
    peaks = find_peaks(maps, geometry_of(9, 9, 9, 9), input_size=(9, 9), threshold=0.5, k=2)
    assert peaks.valid[0, 0] == 1
    x, y, _ = peaks.points()[0]
    assert y == 0.5
    assert 4.5 < x < 5.0


def test_letterbox_padding_is_neither_peak_nor_neighbour():
    # 64 x 64 input, content x in [16, 48): cells (4 px) 4..11 of 16.
    geometry = geometry_of(64, 32, 64, 64, "letterbox")
    maps = np.zeros((1, 1, 16, 16), np.float32)
    maps[0, 0, :, :4] = 5.0  # padding full of high values
    maps[0, 0, 8, 4] = 1.0  # content cell next to the padding
    maps[0, 0, 2, 13] = 3.0  # padding peak
    peaks = find_peaks(maps, geometry, input_size=(64, 64), threshold=0.5, k=5)
    assert peaks.valid[0, 0] == 1
    x, y, score = peaks.points()[0]
    assert score == 1.0
    assert (x, y) == (2.0, 34.0)  # cell centre (4.5, 8.5) * 4 px, minus the offset, unrefined at the edge
    argmax = find_argmax(maps, geometry, input_size=(64, 64))
    np.testing.assert_array_equal(argmax.points(), peaks.points())


def test_last_content_cell_is_not_refined_towards_the_padding():
    geometry = geometry_of(80, 80, 40, 40)
    maps = np.zeros((1, 1, 8, 8), np.float32)
    maps[0, 0, 4, 6] = 1.0
    maps[0, 0, 4, 7] = 0.999  # pulls the fit almost half a cell right
    peaks = find_peaks(maps, geometry, input_size=(40, 40), threshold=0.5, k=1)
    # Cells are 5 input pixels, 10 source pixels.
    assert peaks.x[0, 0, 0] == pytest.approx((6.5 + 0.999 / 2.002) * 10, rel=1e-6)
    # With the content ending at 34 input pixels, cell 7 (centre 37.5) is padding, so cell 6
    # (centre 32.5) is the edge and keeps its centre.
    peaks = find_peaks(maps, dict(geometry, content_width=34), input_size=(40, 40), threshold=0.5, k=1)
    assert peaks.x[0, 0, 0] == 6.5 * 10


def test_content_narrower_than_a_cell_can_hold_no_cell():
    geometry = dict(geometry_of(64, 2, 64, 64, "letterbox"), offset_x=33)
    maps = np.ones((1, 2, 8, 8), np.float32)  # cell centres at 4, 12, ..., none in [33, 35)
    for peaks in (find_argmax(maps, geometry, input_size=(64, 64)),
                  find_peaks(maps, geometry, input_size=(64, 64), threshold=0.0, k=3)):
        np.testing.assert_array_equal(peaks.valid, [[0, 0]])
        assert np.isnan(peaks.x).all() and np.isnan(peaks.y).all() and np.isnan(peaks.score).all()


def test_more_peaks_than_k_keeps_the_best_and_fewer_leaves_nan():
    rng = np.random.default_rng(8)
    maps = np.zeros((1, 2, 32, 32), np.float32)
    cells = rng.choice(16 * 16, 40, replace=False)
    heights = rng.permutation(np.linspace(0.5, 1.0, 40)).astype(np.float32)
    maps[0, 0, (cells // 16) * 2, (cells % 16) * 2] = heights  # 40 isolated peaks
    maps[0, 1, 5, 5] = maps[0, 1, 20, 9] = 0.8
    peaks = find_peaks(maps, geometry_of(32, 32, 32, 32), input_size=(32, 32), threshold=0.1, k=10, refine=False)
    np.testing.assert_array_equal(peaks.valid, [[10, 2]])
    np.testing.assert_array_equal(peaks.score[0, 0], np.sort(heights)[::-1][:10])
    assert np.isnan(peaks.score[0, 1, 2:]).all() and np.isnan(peaks.x[0, 1, 2:]).all()


# --- activation and threshold ------------------------------------------------------------------


def test_sigmoid_threshold_is_decided_on_the_logit():
    maps = np.full((1, 2, 5, 5), -1.0, np.float32)
    maps[0, 0, 2, 2] = 0.0  # sigmoid 0.5 exactly: kept at threshold 0.5
    maps[0, 1, 2, 2] = np.nextafter(np.float32(0), np.float32(-1))  # scores 0.5 in float32, but is below it
    peaks = find_peaks(maps, geometry_of(5, 5, 5, 5), input_size=(5, 5), threshold=0.5, k=1, activation="sigmoid")
    np.testing.assert_array_equal(peaks.valid, [[1, 0]])
    assert peaks.score[0, 0, 0] == np.float32(0.5)


def test_saturated_logits_keep_their_order():
    maps = np.full((1, 1, 9, 9), -5.0, np.float32)
    maps[0, 0, 1, 1] = 20.0
    maps[0, 0, 6, 6] = 40.0  # both score 1.0 in float32
    peaks = find_peaks(maps, geometry_of(9, 9, 9, 9), threshold=0.5, k=2, activation="sigmoid", refine=False)
    np.testing.assert_array_equal(peaks.score[0, 0], [1.0, 1.0])
    np.testing.assert_allclose(peaks.points()[:, :2], [[6.5, 6.5], [1.5, 1.5]])


def test_per_channel_thresholds():
    maps = np.zeros((1, 3, 6, 6), np.float32)
    maps[0, :, 3, 3] = 0.6
    peaks = find_peaks(maps, geometry_of(6, 6, 6, 6), input_size=(6, 6), threshold=[0.5, 0.7, 0.6], k=1)
    np.testing.assert_array_equal(peaks.valid, [[1, 0, 1]])


def test_argmax_is_the_first_peak_without_a_threshold():
    rng = np.random.default_rng(4)
    maps = rng.integers(0, 5, (3, 4, 17, 23)).astype(np.float32)  # many ties
    geometry = resize_geometry(300, 500, PreprocessSpec(64, 96, "letterbox")).as_dict()
    for activation in ("none", "sigmoid"):
        argmax = find_argmax(maps, geometry, input_size=(64, 96), activation=activation)
        for radius in (1, 4):
            first = find_peaks(maps, geometry, input_size=(64, 96), threshold=LOWEST if activation == "none" else 0.0,
                               k=1, radius=radius, activation=activation)
            for field in ("x", "y", "score", "valid"):
                np.testing.assert_array_equal(getattr(argmax, field), getattr(first, field))


# --- geometry ---------------------------------------------------------------------------------


def test_crop_origin_shifts_the_source_coordinates():
    rng = np.random.default_rng(6)
    maps = _blobs(rng, 1, 2, 32, 32)
    geometry = resize_geometry(600, 400, PreprocessSpec(128, 128, "letterbox")).as_dict()
    plain = find_peaks(maps, geometry, input_size=(128, 128), threshold=0.3, k=3)
    # The same 600 x 400 region, cut from a larger source.
    cropped_geometry = dict(geometry, crop_x=250, crop_y=17, source_columns=650, source_rows=617)
    cropped = find_peaks(maps, cropped_geometry, input_size=(128, 128), threshold=0.3, k=3)
    np.testing.assert_array_equal(cropped.valid, plain.valid)
    np.testing.assert_allclose(cropped.x, plain.x + 250, rtol=1e-6)
    np.testing.assert_allclose(cropped.y, plain.y + 17, rtol=1e-6)


def test_one_geometry_per_image():
    rng = np.random.default_rng(7)
    maps = _blobs(rng, 3, 2, 24, 24)
    spec = PreprocessSpec(96, 96, "letterbox")
    geometries = [resize_geometry(r, c, spec) for r, c in ((500, 300), (300, 500), (400, 400))]
    batch = find_peaks(maps, geometries, input_size=spec, threshold=0.3, k=4)
    for n, geometry in enumerate(geometries):
        single = find_peaks(maps[n : n + 1], geometry, input_size=spec, threshold=0.3, k=4)
        for field in ("x", "y", "score", "valid"):
            np.testing.assert_array_equal(getattr(batch, field)[n], getattr(single, field)[0])


def test_thread_count_does_not_change_a_bit():
    rng = np.random.default_rng(9)
    maps = _blobs(rng, 4, 5, 64, 64, count=12)
    geometry = resize_geometry(2000, 1500, PreprocessSpec(256, 256, "letterbox")).as_dict()
    results = [find_peaks(maps, geometry, input_size=(256, 256), threshold=0.2, k=8, activation="sigmoid",
                          threads=threads) for threads in (1, 2, 3, 7)]
    for result in results[1:]:
        for field in ("x", "y", "score", "valid"):
            np.testing.assert_array_equal(getattr(result, field), getattr(results[0], field))


def test_float16_reads_the_same_values_as_float32():
    rng = np.random.default_rng(10)
    maps = _blobs(rng, 2, 3, 40, 40, dtype=np.float16)
    geometry = geometry_of(500, 500, 160, 160)
    half = find_peaks(maps, geometry, input_size=(160, 160), threshold=0.2, k=6)
    single = find_peaks(maps.astype(np.float32), geometry, input_size=(160, 160), threshold=0.2, k=6)
    for field in ("x", "y", "score", "valid"):
        np.testing.assert_array_equal(getattr(half, field), getattr(single, field))


def test_every_finite_float16_value_is_read_exactly():
    """One 1 x 1 map per finite float16 value, subnormals and -0 included: each map's argmax
    score is its value, converted to float32."""
    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)]
    maps = np.ascontiguousarray(halves.reshape(1, -1, 1, 1))
    geometry = geometry_of(1, 1, 1, 1)
    peaks = find_argmax(maps, geometry, input_size=(1, 1), refine=False)
    np.testing.assert_array_equal(peaks.score[0, :, 0].view(np.uint32), halves.astype(np.float32).view(np.uint32))


# --- inputs the op refuses ------------------------------------------------------------------

GOOD = np.zeros((1, 2, 8, 8), np.float32)
GEOMETRY = geometry_of(32, 32, 32, 32)


def _call(maps=GOOD, geometry=GEOMETRY, **overrides):
    arguments = dict(input_size=(32, 32), threshold=0.5, k=2)
    arguments.update(overrides)
    return find_peaks(maps, arguments.pop("geometry", geometry), **arguments)


def _with(value, index):
    maps = GOOD.copy()
    maps[index] = value
    return maps


@pytest.mark.parametrize(
    "maps, message",
    [
        (np.zeros((2, 8, 8), np.float32), r"float32 or float16 \[N, C, h, w\]; got float32 with shape \(2, 8, 8\)"),
        (GOOD.astype(np.float64), r"float32 or float16 \[N, C, h, w\] in native byte order; got float64"),
        (GOOD.astype(np.int32), "got int32"),
        (GOOD.astype(">f4"), "native byte order"),
        (np.zeros((1, 2, 8, 16), np.float32)[..., ::2], r"C-contiguous \[N, C, h, w\]"),
        (np.zeros((0, 2, 8, 8), np.float32), r"every size >= 1; got \[0, 2, 8, 8\]"),
        (np.zeros((1, 2, 8, 0), np.float32), r"every size >= 1"),
        (_with(np.nan, (0, 1, 3, 4)), r"heatmaps\[0, 1, 3, 4\] is nan"),
        (_with(np.inf, (0, 0, 7, 0)), r"heatmaps\[0, 0, 7, 0\] is inf; a head's output must be finite"),
        (_with(np.inf, (0, 1, 0, 0)).astype(np.float16), r"heatmaps\[0, 1, 0, 0\] is inf"),
    ],
)
def test_bad_heatmaps_are_a_value_error(maps, message):
    with pytest.raises(ValueError, match=message):
        _call(maps)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(k=0), "k .* must be 1 to 1024; got 0"),
        (dict(k=1025), "k .* must be 1 to 1024; got 1025"),
        (dict(radius=0), "radius must be 1 to 32"),
        (dict(radius=33), "radius must be 1 to 32"),
        (dict(threshold=[0.1, 0.2, 0.3]), r"threshold needs 1 value .* or 2 \(one per channel\); got 3"),
        (dict(threshold=float("nan")), "every threshold must be finite"),
        (dict(threshold=1.0, activation="sigmoid"), r"probability in \[0, 1\)"),
        (dict(threshold=-0.1, activation="sigmoid"), r"probability in \[0, 1\)"),
        (dict(activation="relu"), "activation must be 'none' or 'sigmoid'; got 'relu'"),
        (dict(threads=-1), "threads must be >= 0"),
        (dict(input_size=(32,)), r"input_size must be the model input's \(height, width\)"),
        (dict(input_size=(32.5, 32)), r"input_size must be the model input's \(height, width\) in integers"),
        (dict(input_size=(16, 32)), r"input_size \(16, 32\) disagrees with the model input the geometry records "
                                    r"\(32, 32\)"),
        (dict(input_size=(16, 32), geometry=least_geometry(GEOMETRY)),
         r"content rectangle .* must be non-empty and inside the 32 x 16 model input"),
        (dict(input_size=None, geometry=least_geometry(GEOMETRY)), r"does not record the model input size: pass "
                                                                   r"input_size=\(height, width\)"),
    ],
)
def test_bad_parameters_are_a_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call(**overrides)


@pytest.mark.parametrize(
    "geometry, message",
    [
        (dict(GEOMETRY, offset_x=1), "content rectangle .* inside"),
        (dict(GEOMETRY, content_width=0), "content rectangle .* non-empty"),
        (dict(GEOMETRY, offset_y=-1), "content rectangle"),
        (dict(GEOMETRY, scale_x=0.0), "scale_x and scale_y must be finite and > 0"),
        (dict(GEOMETRY, scale_y=float("inf")), "scale_x and scale_y must be finite and > 0"),
        (dict(GEOMETRY, crop_x=-3), "the crop must lie inside the source image: crop_x=-3"),
        (dict(GEOMETRY, source_rows=0), "source_rows must be 1 to"),
        (dict(GEOMETRY, offset_x=1.5), r"geometry\['offset_x'\] must be an integer \(pixels\); got 1.5"),
        ({k: v for k, v in GEOMETRY.items() if k != "content_height"}, "dict lacks content_height"),
        (object(), "object lacks source_rows, source_columns, content_height, content_width"),
    ],
)
def test_bad_geometry_is_a_value_error(geometry, message):
    with pytest.raises(ValueError, match=message):
        _call(geometry=geometry)


def test_geometry_list_must_match_the_batch():
    with pytest.raises(ValueError, match=r"one geometry for the whole batch or a sequence of one per image \(1\); "
                                         r"got a sequence of 2"):
        _call(geometry=[GEOMETRY, GEOMETRY])


def test_native_op_checks_its_own_arguments():
    """The binding is callable without the wrappers, so it must refuse bad values itself."""
    call = dict(geometry=GEOMETRY, mode="peaks", k=2, threshold=[0.5], radius=1, activation="none", refine=True)
    with pytest.raises(ValueError, match="argmax mode finds one peak per channel, so k must be 1; got 2"):
        kernels().heatmap_peaks_cpu(GOOD, **dict(call, mode="argmax"))
    with pytest.raises(ValueError, match="mode must be 'peaks' or 'argmax'"):
        kernels().heatmap_peaks_cpu(GOOD, **dict(call, mode="nms"))
    with pytest.raises(ValueError, match="geometry has an unknown key 'offsetx'"):
        kernels().heatmap_peaks_cpu(GOOD, **dict(call, geometry=dict(GEOMETRY, offsetx=0)))
    with pytest.raises(ValueError, match="geometry lacks 'crop_x'"):
        kernels().heatmap_peaks_cpu(GOOD, **dict(call, geometry={k: v for k, v in GEOMETRY.items() if k != "crop_x"}))
    with pytest.raises(ValueError, match="at most 256 per-channel thresholds"):
        kernels().heatmap_peaks_cpu(np.zeros((1, 300, 2, 2), np.float32), **dict(call, threshold=[0.5] * 300))


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="heatmaps must be a numpy array"):
        _call(GOOD.tolist())


# --- devices -------------------------------------------------------------------------------


def test_unknown_device_names_the_implemented_ones():
    with pytest.raises(NativeOpError, match=r"heatmap_peaks has no implementation for device 'tpu'; implemented: cpu, cuda"):
        _call(device="tpu")


def test_cuda_without_a_device_says_what_is_available():
    count, _ = kernels().cuda_device_count()
    if count > 0:
        pytest.skip("a CUDA device is visible here; this checks the refusal where there is none")
    with pytest.raises(NativeOpError, match=r"heatmap_peaks cannot run on 'cuda'.*Available devices: cpu"):
        _call(device="cuda")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "shape, threshold, k, radius, activation",
    [
        ((1, 5, 256, 256), 0.3, 8, 1, "none"),  # the vcf levels head
        ((2, 3, 64, 80), 0.6, 3, 2, "sigmoid"),
        ((1, 2, 256, 256), LOWEST, 1024, 1, "none"),  # thousands of candidates: several sort rounds
        ((1, 1, 256, 256), LOWEST, 1, 1, "none"),  # K = 1 over thousands of candidates
        ((1, 1, 1, 1), 0.0, 4, 1, "none"),
        ((3, 2, 7, 5), -0.5, 40, 3, "none"),  # K larger than the map
    ],
)
def test_cuda_matches_cpu(shape, threshold, k, radius, activation, dtype):
    rng = np.random.default_rng(shape[2] + k)
    maps = (_blobs(rng, *shape, count=10) + rng.normal(0, 0.2, shape)).astype(dtype)
    geometry = resize_geometry(shape[2] * 9, shape[3] * 7 + 1, PreprocessSpec(shape[2] * 4, shape[3] * 4)).as_dict()
    size = (shape[2] * 4, shape[3] * 4)
    for mode in ("peaks", "argmax"):
        if mode == "peaks":
            arguments = dict(threshold=threshold, k=k, radius=radius)
            cpu = find_peaks(maps, geometry, input_size=size, activation=activation, **arguments)
            gpu = find_peaks(maps, geometry, input_size=size, activation=activation, device="cuda", **arguments)
        else:
            cpu = find_argmax(maps, geometry, input_size=size, activation=activation)
            gpu = find_argmax(maps, geometry, input_size=size, activation=activation, device="cuda")
        # The same candidates in the same order; positions and sigmoid scores to float64
        # rounding (the device's exp may differ from the host's in the last place).
        np.testing.assert_array_equal(gpu.valid, cpu.valid)
        np.testing.assert_allclose(gpu.x, cpu.x, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(gpu.y, cpu.y, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(gpu.score, cpu.score, rtol=1e-6, atol=0)
