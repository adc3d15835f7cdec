"""The mask decode op against the numpy reference, against itself across thread counts,
dtypes and devices, and on the inputs it must refuse."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.ops.mask_decode import decode_mask, decode_masks, decode_rle
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..helpers import cpu_and_cuda, geometry_of, least_geometry
from . import reference_mask_decode as reference


def _input_size(g: dict) -> tuple[int, int]:
    return g["input_height"], g["input_width"]


def _label_count(activation: str, channels: int) -> int:
    return channels if activation == "sigmoid" else channels - 1


def _decode(logits, g, output_size, activation, thresholds, **options):
    return decode_mask(
        logits, least_geometry(g), input_size=_input_size(g), activation=activation,
        thresholds=thresholds if activation == "sigmoid" else None, output_size=output_size, **options,
    )


def _tolerance(image_logits: np.ndarray) -> float:
    """float32 interpolation of float32 weights and logits of magnitude M is off by a few
    units in the last place of M (about 1e-7 M); 1e-5 M leaves a wide margin, and only pixels
    that close to a decision are allowed to differ from the float64 reference."""
    return 1e-5 * max(1.0, float(np.abs(image_logits.astype(np.float64)).max()))


def _check(logits, g, output_size, activation, thresholds, image=0, spacing_mm=None, rle_capacity=None, **options):
    """Runs the op and checks mask, statistics and runs against the reference; returns
    (result, number of pixels that differ from the reference)."""
    result = _decode(
        logits, g, output_size, activation, thresholds, image=image, spacing_mm=spacing_mm,
        rle=rle_capacity is not None, rle_capacity=rle_capacity or 1, **options,
    )
    height, width = output_size
    assert result.mask.shape == (height, width) and result.mask.dtype == np.uint8

    expected, values, inside = reference.decode(logits[image], g, output_size, activation, thresholds)
    differ = result.mask != expected
    if differ.any():
        # A pixel may differ only where float32 rounding can decide it: an interpolated
        # logit within the tolerance of a threshold, or of the logit it competes with.
        near = reference.near_decision_boundary(values, activation, thresholds, _tolerance(logits[image])) & inside
        unexplained = np.argwhere(differ & ~near)
        assert len(unexplained) == 0, (
            f"{len(unexplained)} pixels differ from the reference away from any decision boundary, "
            f"first at (y, x) = {tuple(unexplained[0])}: op {result.mask[tuple(unexplained[0])]}, "
            f"reference {expected[tuple(unexplained[0])]}, values {values[:, unexplained[0][0], unexplained[0][1]]}"
        )
    assert not result.mask[~inside].any(), "pixels outside the crop must be 0"

    labels = _label_count(activation, logits.shape[1])
    area = reference.pixel_area(spacing_mm, g, output_size)
    expected_stats = reference.statistics(result.mask, labels, area)
    assert len(result.labels) == labels
    for got, want in zip(result.labels, expected_stats):
        assert got.pixel_count == want["pixel_count"]
        assert got.bbox == want["bbox"]
        if want["centroid"] is None:
            assert got.centroid is None
        else:
            np.testing.assert_allclose(got.centroid, want["centroid"], rtol=1e-12, atol=1e-9)
        if want["area_mm2"] is None:
            assert got.area_mm2 is None
        else:
            assert got.area_mm2 == pytest.approx(want["area_mm2"], rel=1e-12, abs=1e-12)

    if rle_capacity is None:
        assert result.runs is None and result.run_count == 0
    else:
        full = reference.rle_encode(result.mask)
        assert result.run_count == len(full)
        np.testing.assert_array_equal(result.runs, full[:rle_capacity])
        assert result.rle_complete == (len(full) <= rle_capacity)
    return result, int(differ.sum())


def _smooth_logits(rng, batch, channels, h, w, scale=6.0):
    """Blob-like logits: a few Gaussian bumps per channel over a negative floor, so the
    masks have regions, boundaries and overlaps instead of salt and pepper."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((batch, channels, h, w), np.float32)
    for n in range(batch):
        for c in range(channels):
            plane = np.full((h, w), -scale / 2)
            for _ in range(3):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                sigma = rng.uniform(0.1, 0.35) * max(h, w)
                plane += scale * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
            out[n, c] = plane + rng.normal(0, 0.3, (h, w))
    return out


# --- against the reference ----------------------------------------------------------------


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize(
    "logit_size, g, output_size",
    [
        ((1, 1), geometry_of(7, 5, 4, 4), (7, 5)),  # one logit: a constant mask
        ((1, 9), geometry_of(30, 80, 16, 16, "letterbox"), (30, 80)),  # one logit row
        ((9, 1), geometry_of(31, 3, 8, 8), (31, 3)),
        ((64, 64), geometry_of(300, 500, 64, 64, "letterbox"), (300, 500)),  # padding above and below
        ((32, 32), geometry_of(501, 299, 64, 64, "letterbox"), (501, 299)),  # logits at half resolution
        ((48, 80), geometry_of(97, 131, 48, 80), (97, 131)),
        ((33, 17), geometry_of(40, 30, 64, 64, "letterbox"), (40, 30)),  # source smaller than the input
        ((64, 64), geometry_of(700, 450, 64, 64, "letterbox", crop=(100, 50, 300, 500)), (700, 450)),
        ((40, 40), geometry_of(333, 517, 40, 40, crop=(17, 0, 400, 333)), (333, 517)),
        ((64, 64), geometry_of(3000, 2000, 64, 64, "letterbox"), (375, 250)),  # display size, smaller
        ((16, 16), geometry_of(20, 30, 16, 16, "letterbox"), (257, 129)),  # display size, larger
        ((1, 1), geometry_of(1, 1, 1, 1), (1, 1)),
    ],
)
@pytest.mark.parametrize(
    "dtype, activation, channels, thresholds",
    [
        ("float32", "sigmoid", 1, 0.5),
        ("float16", "sigmoid", 1, 0.3),
        ("float32", "sigmoid", 3, (0.5, 0.2, 0.8)),
        ("float32", "softmax", 4, None),
        ("float16", "softmax", 2, None),
    ],
)
def test_matches_reference(device, logit_size, g, output_size, dtype, activation, channels, thresholds):
    rng = np.random.default_rng(logit_size[0] * 1000 + output_size[0] + channels)
    logits = _smooth_logits(rng, 2, channels, *logit_size).astype(dtype)
    result, differing = _check(
        logits, g, output_size, activation, thresholds, image=1, spacing_mm=(0.15, 0.2), rle_capacity=4096,
        device=device,
    )
    # Rounding decides a handful of pixels at most, never a visible part of a boundary.
    assert differing <= max(2, result.mask.size // 2000)


@settings(max_examples=400, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    rows=st.integers(1, 60),
    columns=st.integers(1, 60),
    input_height=st.integers(1, 24),
    input_width=st.integers(1, 24),
    letterbox=st.booleans(),
    crop_fractions=st.one_of(st.none(), st.tuples(*[st.floats(0.0, 1.0)] * 4)),
    output=st.one_of(st.none(), st.tuples(st.integers(1, 60), st.integers(1, 60))),
    activation=st.sampled_from(["sigmoid", "softmax"]),
    channels=st.integers(1, 4),
    threshold_choice=st.sampled_from(["one", "each", "extremes"]),
    dtype=st.sampled_from(["float32", "float16"]),
    threads=st.integers(1, 3),
    rle_capacity=st.one_of(st.none(), st.integers(1, 50)),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_property(
    h, w, rows, columns, input_height, input_width, letterbox, crop_fractions, output, activation, channels,
    threshold_choice, dtype, threads, rle_capacity, seed,
):
    rng = np.random.default_rng(seed)
    if activation == "softmax":
        channels = max(channels, 2)
    crop = None
    if crop_fractions is not None:
        fx, fy, fw, fh = crop_fractions
        crop_x, crop_y = int(fx * (columns - 1)), int(fy * (rows - 1))
        crop = (crop_x, crop_y, 1 + int(fw * (columns - crop_x - 1)), 1 + int(fh * (rows - crop_y - 1)))
    g = geometry_of(rows, columns, input_height, input_width, "letterbox" if letterbox else "stretch", crop)
    thresholds = {
        "one": float(rng.uniform(0.05, 0.95)),
        "each": tuple(rng.uniform(0.05, 0.95, channels)),
        "extremes": tuple(rng.choice([0.0, 1.0, 0.5], channels)),
    }[threshold_choice]
    # Coarse values (multiples of 1/4) make exact ties between channels and corners common.
    logits = (np.round(rng.normal(0, 2, (1, channels, h, w)) * 4) / 4).astype(dtype)
    _check(
        logits, g, output or (rows, columns), activation, thresholds, spacing_mm=(0.1, 0.3),
        rle_capacity=rle_capacity, threads=threads,
    )


def test_smooth_logits_at_radiograph_size_match_reference_almost_everywhere():
    rng = np.random.default_rng(7)
    g = geometry_of(1200, 900, 128, 128, "letterbox")
    logits = _smooth_logits(rng, 1, 2, 64, 64)
    result, differing = _check(logits, g, (1200, 900), "sigmoid", (0.5, 0.7), spacing_mm=(0.1, 0.1), rle_capacity=10**5)
    assert differing <= 5
    assert all(label.pixel_count > 1000 for label in result.labels), "the case must have regions to measure"


# --- rules ------------------------------------------------------------------------------------


def test_overlapping_labels_go_to_the_higher_logit_whatever_the_thresholds():
    logits = np.zeros((1, 2, 1, 3), np.float32)
    logits[0, 0] = [2.0, 2.0, 2.0]  # qualifies everywhere (threshold 0.5 -> logit 0)
    logits[0, 1] = [1.0, 3.0, 5.0]  # qualifies from 1 on (threshold 0.7 -> logit 0.85)
    g = geometry_of(1, 3, 1, 3)
    result = _decode(logits, g, (1, 3), "sigmoid", (0.5, 0.7))
    np.testing.assert_array_equal(result.mask, [[1, 2, 2]])
    # A higher threshold on label 2 removes it only where it does not qualify.
    result = _decode(logits, g, (1, 3), "sigmoid", (0.5, 0.99))
    np.testing.assert_array_equal(result.mask, [[1, 1, 2]])


def test_equal_logits_go_to_the_lower_label():
    logits = np.full((1, 3, 2, 2), 1.5, np.float32)
    g = geometry_of(4, 4, 2, 2)
    np.testing.assert_array_equal(_decode(logits, g, (4, 4), "sigmoid", 0.5).mask, np.ones((4, 4)))
    np.testing.assert_array_equal(_decode(logits, g, (4, 4), "softmax", None).mask, np.zeros((4, 4)))


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_ties_in_interpolated_cells_go_to_the_lower_label(activation):
    """Channels 1 and 2 hold the same values, so they tie at every pixel, also inside cells
    that straddle a boundary and are interpolated: channel 2 must never win."""
    rng = np.random.default_rng(13)
    logits = rng.normal(0, 2, (1, 3, 9, 9)).astype(np.float32)
    logits[0, 2] = logits[0, 1]
    g = geometry_of(40, 40, 9, 9)
    mask = _decode(logits, g, (40, 40), activation, 0.5).mask
    channel_1, channel_2 = (2, 3) if activation == "sigmoid" else (1, 2)
    assert 100 < (mask == channel_1).sum() < 1500 and not (mask == channel_2).any()


def test_sigmoid_threshold_defaults_to_one_half():
    logits = np.array([[[[-0.01, 0.0, 0.01]]]], np.float32)
    g = geometry_of(1, 3, 1, 3)
    result = decode_mask(logits, least_geometry(g), input_size=(1, 3), activation="sigmoid")
    np.testing.assert_array_equal(result.mask, [[0, 1, 1]])


def test_thresholds_zero_and_one_mean_always_and_never():
    logits = np.random.default_rng(1).normal(0, 30, (1, 2, 5, 5)).astype(np.float32)
    g = geometry_of(11, 13, 5, 5)
    np.testing.assert_array_equal(_decode(logits, g, (11, 13), "sigmoid", (1.0, 1.0)).mask, 0)
    always = _decode(logits, g, (11, 13), "sigmoid", (0.0, 1.0)).mask
    np.testing.assert_array_equal(always, 1)


def test_softmax_takes_the_argmax_with_background_first():
    logits = np.zeros((1, 3, 1, 3), np.float32)
    logits[0, :, 0, 0] = [5, 1, 2]
    logits[0, :, 0, 1] = [0, 4, 3]
    logits[0, :, 0, 2] = [-1, -2, 0]
    result = _decode(logits, geometry_of(1, 3, 1, 3), (1, 3), "softmax", None, labels=("a", "b"))
    np.testing.assert_array_equal(result.mask, [[0, 1, 2]])
    assert [s.label for s in result.labels] == ["a", "b"] and [s.value for s in result.labels] == [1, 2]


def test_crop_decides_where_labels_can_be():
    g = geometry_of(50, 80, 32, 32, "letterbox", crop=(20, 10, 40, 30))
    logits = np.full((1, 1, 8, 8), 10.0, np.float32)
    result = _decode(logits, g, (50, 80), "sigmoid", 0.5, spacing_mm=(0.5, 0.25))
    expected = np.zeros((50, 80), np.uint8)
    expected[10:40, 20:60] = 1
    np.testing.assert_array_equal(result.mask, expected)
    stats = result.labels[0]
    assert stats.bbox == (20, 10, 60, 40) and stats.pixel_count == 1200
    assert stats.centroid == pytest.approx((40.0, 25.0))
    assert stats.area_mm2 == pytest.approx(1200 * 0.5 * 0.25)


def test_area_is_the_same_at_any_output_size():
    """Statistics are in output pixels, but the area in mm^2 measures the same region."""
    g = geometry_of(600, 400, 64, 64, "letterbox")
    logits = _smooth_logits(np.random.default_rng(3), 1, 1, 64, 64)
    at_source = _decode(logits, g, (600, 400), "sigmoid", 0.5, spacing_mm=(0.2, 0.1)).labels[0]
    for size in ((300, 200), (1200, 800), (150, 400)):
        scaled = _decode(logits, g, size, "sigmoid", 0.5, spacing_mm=(0.2, 0.1)).labels[0]
        assert scaled.area_mm2 == pytest.approx(at_source.area_mm2, rel=0.02)
        sy, sx = size[0] / 600, size[1] / 400
        assert scaled.centroid[0] / sx == pytest.approx(at_source.centroid[0], abs=1.0 / sx)
        assert scaled.centroid[1] / sy == pytest.approx(at_source.centroid[1], abs=1.0 / sy)


def test_float16_logits_decode_like_the_same_values_in_float32():
    rng = np.random.default_rng(4)
    values = rng.normal(0, 3, (2, 3, 17, 23)).astype(np.float16)
    # Subnormal and huge halves too: the conversion must be exact.
    values[0, 0, 0, :4] = np.array([6e-8, -6e-8, 3e-5, 65504], np.float16)
    g = geometry_of(101, 77, 32, 32, "letterbox")
    for activation, thresholds in (("sigmoid", (0.4, 0.5, 0.6)), ("softmax", None)):
        half = _decode(values, g, (101, 77), activation, thresholds, image=0, rle=True)
        single = _decode(values.astype(np.float32), g, (101, 77), activation, thresholds, image=0, rle=True)
        np.testing.assert_array_equal(half.mask, single.mask)
        np.testing.assert_array_equal(half.runs, single.runs)
        assert half.labels == single.labels


def test_thread_count_does_not_change_anything():
    rng = np.random.default_rng(11)
    g = geometry_of(1500, 1100, 96, 96, "letterbox", crop=(30, 40, 1000, 1400))
    logits = _smooth_logits(rng, 1, 3, 96, 96)
    results = [
        _decode(logits, g, (1500, 1100), "sigmoid", (0.5, 0.6, 0.4), spacing_mm=(0.1, 0.1), rle=True, threads=t)
        for t in (1, 2, 3, 7)
    ]
    # A small capacity: the stored prefix and the count must not depend on chunking either.
    small = [
        _decode(logits, g, (1500, 1100), "sigmoid", (0.5, 0.6, 0.4), rle=True, rle_capacity=37, threads=t)
        for t in (1, 2, 5)
    ]
    assert results[0].run_count > 37
    for result in results[1:]:
        np.testing.assert_array_equal(result.mask, results[0].mask)
        np.testing.assert_array_equal(result.runs, results[0].runs)
        assert result.labels == results[0].labels
    for result in small:
        np.testing.assert_array_equal(result.runs, results[0].runs[:37])
        assert result.run_count == results[0].run_count


def test_decodes_the_requested_image_of_a_batch():
    rng = np.random.default_rng(5)
    logits = _smooth_logits(rng, 3, 1, 16, 16)
    geometries = [geometry_of(*size, 32, 32, "letterbox") for size in ((40, 60), (50, 50), (70, 20))]
    masks = decode_masks(
        logits, [least_geometry(g) for g in geometries], input_size=(32, 32), activation="sigmoid", thresholds=0.5
    )
    for n, (g, result) in enumerate(zip(geometries, masks)):
        assert result.mask.shape == (g["source_rows"], g["source_columns"])
        single = _decode(logits, g, result.mask.shape, "sigmoid", 0.5, image=n)
        np.testing.assert_array_equal(result.mask, single.mask)
        expected, _, _ = reference.decode(logits[n], g, result.mask.shape, "sigmoid", 0.5)
        assert (result.mask == expected).mean() > 0.999
    with pytest.raises(ValueError, match="3 images in the batch but 2 geometries"):
        decode_masks(logits, [least_geometry(g) for g in geometries[:2]], input_size=(32, 32), activation="sigmoid")


def test_writes_into_out_and_nothing_else():
    g = geometry_of(20, 30, 8, 8)
    logits = _smooth_logits(np.random.default_rng(6), 1, 1, 8, 8)
    out = np.full((22, 30), 77, np.uint8)
    result = _decode(logits, g, None, "sigmoid", 0.5, out=out[1:21])
    assert result.mask.base is out
    assert (out[0] == 77).all() and (out[21] == 77).all()
    expected = _decode(logits, g, (20, 30), "sigmoid", 0.5).mask
    np.testing.assert_array_equal(out[1:21], expected)
    assert 0 < expected.sum() < expected.size


def test_the_preprocess_geometry_is_accepted_as_it_is():
    """The ResizeGeometry the preprocess op returns records the model input size: no input_size
    is needed, and an older geometry without crop fields decodes the whole source image."""
    spec = PreprocessSpec(64, 64, resize="letterbox")
    resized = resize_geometry(300, 500, spec)
    logits = _smooth_logits(np.random.default_rng(8), 1, 1, 64, 64)
    plain = decode_mask(logits, resized, activation="sigmoid", thresholds=0.5)
    expected, _, _ = reference.decode(logits[0], geometry_of(300, 500, 64, 64, "letterbox"), (300, 500), "sigmoid",
                                      0.5)
    assert (plain.mask == expected).mean() > 0.999
    uncropped = SimpleNamespace(**{k: v for k, v in resized.as_dict().items() if not k.startswith("crop_")})
    again = decode_mask(logits, uncropped, input_size=spec, activation="sigmoid", thresholds=0.5)
    np.testing.assert_array_equal(again.mask, plain.mask)


# --- run-length encoding ----------------------------------------------------------------------


def test_rle_round_trip_and_size():
    g = geometry_of(3000, 3000, 256, 256, "letterbox")
    logits = _smooth_logits(np.random.default_rng(9), 1, 2, 256, 256)
    result = _decode(logits, g, (3000, 3000), "sigmoid", 0.5, rle=True)
    assert result.rle_complete and result.runs.dtype == np.uint32 and len(np.unique(result.runs[:, 0])) == 3
    np.testing.assert_array_equal(decode_rle(result.runs, result.mask.shape), result.mask)

    # One lesion, 800 rows high, in a 9 MB mask: 2 runs per lesion row plus 1, 13 kB.
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    lesion = 8.0 * (1.0 - ((x - 100) ** 2 + (y - 140) ** 2) / 34.0**2)
    result = _decode(lesion[None, None], g, (3000, 3000), "sigmoid", 0.5, rle=True)
    rows_hit = np.flatnonzero(result.mask.any(axis=1))
    assert 780 < len(rows_hit) < 820
    assert result.run_count == 2 * len(rows_hit) + 1 and result.runs.nbytes < 16_000
    np.testing.assert_array_equal(decode_rle(result.runs, result.mask.shape), result.mask)


def test_rle_of_uniform_masks_is_one_run():
    g = geometry_of(7, 9, 4, 4)
    for value, thresholds in ((0, 1.0), (1, 0.0)):
        result = _decode(np.zeros((1, 1, 4, 4), np.float32), g, (7, 9), "sigmoid", thresholds, rle=True)
        np.testing.assert_array_equal(result.runs, [[value, 63]])


def test_rle_overflow_is_reported_and_never_overruns():
    g = geometry_of(40, 40, 20, 20)
    logits = np.where(np.indices((20, 20)).sum(axis=0) % 2 == 0, 5.0, -5.0).astype(np.float32)[None, None]
    full = _decode(logits, g, (40, 40), "sigmoid", 0.5, rle=True)
    assert full.rle_complete and full.run_count > 100
    # The op gets a view of the first 10 rows of a larger buffer: the rest must stay as it was.
    buffer = np.full((50, 2), 0xDEADBEEF, np.uint32)
    native = kernels().mask_decode_cpu(
        logits, 0, np.empty((40, 40), np.uint8), activation="sigmoid", thresholds=[0.5], runs=buffer[:10], geometry=g,
    )
    assert native["run_count"] == full.run_count
    np.testing.assert_array_equal(buffer[:10], full.runs[:10])
    assert (buffer[10:] == 0xDEADBEEF).all()
    truncated = _decode(logits, g, (40, 40), "sigmoid", 0.5, rle=True, rle_capacity=10)
    assert not truncated.rle_complete and len(truncated.runs) == 10 and truncated.run_count == full.run_count
    with pytest.raises(ValueError, match="incomplete encoding"):
        decode_rle(truncated.runs, (40, 40))


@pytest.mark.parametrize(
    "runs, shape, message",
    [
        (np.array([[1, 5]], np.uint32), (2, 3), "cover 5 pixels but a 2 x 3 mask has 6"),
        (np.array([[1, 0], [0, 6]], np.uint32), (2, 3), "at least 1 pixel"),
        (np.array([[300, 6]], np.int64), (2, 3), "0 to 255"),
        (np.array([1, 6], np.uint32), (2, 3), r"\[K, 2\]"),
    ],
)
def test_decode_rle_refuses_what_is_not_a_mask(runs, shape, message):
    with pytest.raises(ValueError, match=message):
        decode_rle(runs, shape)


# --- inputs the op refuses --------------------------------------------------------------------

GEOMETRY = geometry_of(20, 30, 16, 16, "letterbox")
LOGITS = np.zeros((2, 2, 8, 8), np.float32)


def _native(logits=LOGITS, image=0, mask=None, **overrides):
    """The native op on GEOMETRY; overrides of its fields go into the geometry, the rest are keywords."""
    geometry = {key: overrides.pop(key, value) for key, value in GEOMETRY.items()}
    call = dict(activation="sigmoid", thresholds=[0.5], geometry=geometry)
    call.update(overrides)
    mask = np.full((20, 30), 9, np.uint8) if mask is None else mask
    return kernels().mask_decode_cpu(logits, image, mask, **call)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            dict(logits=np.zeros((2, 8, 8), np.float32)),
            r"float32 or float16 \[N, C, h, w\].*got float32 with shape \(2, 8, 8\)",
        ),
        (dict(logits=LOGITS.astype(np.float64)), "got float64"),
        (dict(logits=LOGITS.astype(">f4")), "native byte order"),
        (dict(logits=np.zeros((2, 2, 8, 16), np.float32)[..., ::2]), "C-contiguous"),
        (dict(logits=np.zeros((0, 2, 8, 8), np.float32)), r"every size >= 1; got \[0, 2, 8, 8\]"),
        (dict(logits=np.zeros((1, 1, 0, 8), np.float32)), "every size >= 1"),
        (dict(image=2), "image 2 is outside the batch of 2"),
        (dict(image=-1), "image -1 is outside"),
        (dict(mask=np.zeros((20, 30, 1), np.uint8)), r"uint8 \[height, width\]"),
        (dict(mask=np.zeros((20, 30), np.int32)), "got int32"),
        (dict(mask=np.zeros((20, 60), np.uint8)[:, ::2]), "C-contiguous"),
        (dict(mask=np.zeros((0, 30), np.uint8)), "mask must be 1 to 65535"),
        (dict(mask=np.zeros((1, 65536), np.uint8)), "mask must be 1 to 65535"),
        (dict(activation="relu"), "activation must be 'sigmoid' or 'softmax'"),
        (dict(thresholds=[0.5, 0.5, 0.5]), "1 threshold .* or 2 .*got 3"),
        (dict(thresholds=[]), "got 0"),
        (dict(thresholds=[1.5]), r"must be in \[0, 1\]; got 1.5"),
        (dict(thresholds=[-0.1]), r"must be in \[0, 1\]"),
        (dict(thresholds=[float("nan")]), r"must be in \[0, 1\]; got nan"),
        (dict(activation="softmax", thresholds=[0.5]), "no thresholds"),
        (
            dict(logits=np.zeros((1, 1, 8, 8), np.float32), activation="softmax", thresholds=[]),
            "needs 2 to 255 channels",
        ),
        (dict(logits=np.zeros((1, 255, 1, 1), np.float32)), "at most 254 channels"),
        (dict(crop_x=30), "crop must lie inside the source image: crop_x=30"),
        (dict(crop_width=31), "crop_width=31"),
        (dict(crop_x=5, crop_width=26), "crop must lie inside"),
        (dict(crop_y=-1), "crop_y=-1"),
        (dict(crop_height=0), "crop_height=0"),
        (dict(source_rows=0), "source_rows must be 1 to 16777216 .the whole source image"),
        (dict(content_width=17), r"content rectangle \(.*content_width=17.*\) must be non-empty and inside the 16 x"),
        (dict(offset_y=12), "offset_y=12"),
        (dict(input_height=0), "input_height must be 1 to 16777216 .the model input"),
        (dict(scale_x=float("nan")), "scale_x and scale_y must be finite and > 0"),
        (dict(offset_x=1.5), r"geometry\['offset_x'\] must be an integer \(pixels\); got 1.5"),
        (dict(row_spacing_mm=0.1), "pixel spacing must be two finite values > 0"),
        (dict(row_spacing_mm=-0.1, column_spacing_mm=0.1), "pixel spacing"),
        (dict(row_spacing_mm=float("inf"), column_spacing_mm=0.1), "pixel spacing"),
        (dict(runs=np.zeros((0, 2), np.uint32)), "at least one run"),
        (dict(runs=np.zeros((4, 3), np.uint32)), r"uint32 \[capacity, 2\]"),
        (dict(runs=np.zeros((4, 2), np.int32)), r"uint32 \[capacity, 2\]"),
        (dict(runs=[[0, 0]]), "runs must be None or a uint32"),
        (dict(runs=np.zeros((2, 8), np.uint32)[:, ::4]), "C-contiguous"),
        (dict(threads=-1), "threads must be >= 0"),
    ],
)
def test_bad_input_is_a_value_error_and_writes_nothing(arguments, message):
    mask = arguments.pop("mask", None)
    if mask is None:
        mask = np.full((20, 30), 9, np.uint8)
    before = mask.copy()
    with pytest.raises(ValueError, match=message):
        _native(mask=mask, **arguments)
    np.testing.assert_array_equal(mask, before)


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_are_refused_before_writing(device, dtype, bad):
    logits = np.full((2, 2, 8, 8), -1.0, dtype)
    logits[1, 1, 7, 7] = bad  # the very last logit of the image
    out = np.full((20, 30), 9, np.uint8)
    with pytest.raises(ValueError, match="image 1 hold 1 NaN or infinite values"):
        _decode(logits, GEOMETRY, None, "sigmoid", 0.5, image=1, out=out, device=device)
    assert (out == 9).all()
    # The other image of the batch is fine.
    _decode(logits, GEOMETRY, None, "sigmoid", 0.5, image=0, out=out, device=device)
    assert (out == 0).all()


def test_read_only_mask_is_refused():
    mask = np.zeros((20, 30), np.uint8)
    mask.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _native(mask=mask)


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(activation="softmax", thresholds=0.5), ValueError, "no thresholds"),
        (dict(activation="tanh"), ValueError, "activation must be"),
        (dict(activation="sigmoid", output_size=(0, 5)), ValueError, "at least 1 x 1"),
        (dict(activation="sigmoid", output_size=(5.5, 5)), ValueError, "whole pixels"),
        (dict(activation="sigmoid", output_size=(3, 4), out=np.zeros((4, 3), np.uint8)), ValueError, "does not match"),
        (dict(activation="sigmoid", labels=("a", "b", "c")), ValueError, "has 2 labels; got 3 names"),
        (dict(activation="sigmoid", rle=True, rle_capacity=0), ValueError, "rle_capacity"),
        (dict(activation="sigmoid", spacing_mm=(0.1, 0.0)), ValueError, "spacing_mm"),
        (dict(activation="sigmoid", input_size=(16,)), ValueError, "input_size"),
        (dict(activation="sigmoid", device="tpu"), NativeOpError, r"no implementation for device 'tpu'"),
    ],
)
def test_bad_options_of_the_wrapper(options, error, message):
    options = {"input_size": (16, 16), **options}
    with pytest.raises(error, match=message):
        decode_mask(LOGITS, least_geometry(GEOMETRY), **options)


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="logits must be a numpy array"):
        decode_mask([[1.0]], least_geometry(GEOMETRY), input_size=(16, 16), activation="sigmoid")


def test_cuda_without_a_device_says_what_is_available():
    count, _ = kernels().cuda_device_count()
    if count > 0:
        pytest.skip("a CUDA device is visible here; this checks the refusal where there is none")
    with pytest.raises(NativeOpError, match=r"cannot run on 'cuda'.*Available devices: cpu"):
        decode_mask(LOGITS, least_geometry(GEOMETRY), input_size=(16, 16), activation="sigmoid", device="cuda")


# --- CUDA against the CPU ---------------------------------------------------------------------


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize(
    "logit_size, g, output_size, activation, channels, thresholds",
    [
        ((512, 512), geometry_of(3000, 3000, 512, 512, "letterbox"), (3000, 3000), "sigmoid", 1, 0.5),
        ((256, 256), geometry_of(2400, 2000, 256, 256, "letterbox"), (2400, 2000), "sigmoid", 3, (0.5, 0.3, 0.7)),
        ((128, 128), geometry_of(2500, 2048, 512, 512, "letterbox", crop=(100, 200, 1800, 2000)), (2500, 2048),
         "softmax", 5, None),
        ((64, 64), geometry_of(333, 517, 64, 64), (800, 600), "softmax", 2, None),
        ((1, 1), geometry_of(3, 5, 1, 1), (3, 5), "sigmoid", 1, 0.5),
        ((7, 1), geometry_of(70000 // 2, 1, 7, 1), (35000, 1), "sigmoid", 1, 0.5),  # tall, 1 wide
    ],
)
def test_cuda_matches_cpu(dtype, logit_size, g, output_size, activation, channels, thresholds):
    rng = np.random.default_rng(logit_size[0] + channels)
    logits = _smooth_logits(rng, 2, channels, *logit_size).astype(dtype)
    common = dict(image=1, spacing_mm=(0.14, 0.14), rle=True, rle_capacity=1 << 20)
    gpu = _decode(logits, g, output_size, activation, thresholds, device="cuda", **common)
    cpu = _decode(logits, g, output_size, activation, thresholds, device="cpu", **common)
    differ = gpu.mask != cpu.mask
    if differ.any():
        # Only a host compiler that fuses multiply-adds (not x86-64) can make the two differ,
        # and then only at a decision boundary.
        _, values, _ = reference.decode(logits[1], g, output_size, activation, thresholds)
        near = reference.near_decision_boundary(values, activation, thresholds, _tolerance(logits[1]))
        assert not (differ & ~near).any()
    labels = _label_count(activation, channels)
    expected_stats = reference.statistics(gpu.mask, labels, reference.pixel_area((0.14, 0.14), g, output_size))
    for got, want in zip(gpu.labels, expected_stats):
        assert (got.pixel_count, got.bbox) == (want["pixel_count"], want["bbox"])
        if want["centroid"] is not None:
            np.testing.assert_allclose(got.centroid, want["centroid"], rtol=1e-12)
    np.testing.assert_array_equal(gpu.runs, reference.rle_encode(gpu.mask))
    assert gpu.run_count == len(gpu.runs)
    if not differ.any():
        assert gpu.labels == cpu.labels
        np.testing.assert_array_equal(gpu.runs, cpu.runs)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("capacity", [1, 2, 17, 1000])
def test_cuda_rle_overflow_keeps_the_first_runs(capacity):
    g = geometry_of(40, 40, 20, 20)
    logits = np.where(np.indices((20, 20)).sum(axis=0) % 2 == 0, 5.0, -5.0).astype(np.float32)[None, None]
    full = _decode(logits, g, (40, 40), "sigmoid", 0.5, rle=True, device="cpu")
    gpu = _decode(logits, g, (40, 40), "sigmoid", 0.5, rle=True, rle_capacity=capacity, device="cuda")
    assert gpu.run_count == full.run_count
    np.testing.assert_array_equal(gpu.runs, full.runs[:capacity])


@pytest.mark.needs_cuda
def test_cuda_without_rle_and_with_many_labels():
    rng = np.random.default_rng(12)
    logits = rng.normal(0, 2, (1, 254, 6, 6)).astype(np.float32)
    g = geometry_of(61, 47, 6, 6)
    gpu = _decode(logits, g, (61, 47), "sigmoid", 0.6, device="cuda")
    cpu = _decode(logits, g, (61, 47), "sigmoid", 0.6, device="cpu")
    assert gpu.runs is None and gpu.run_count == 0
    np.testing.assert_array_equal(gpu.mask, cpu.mask)
    assert gpu.labels == cpu.labels

