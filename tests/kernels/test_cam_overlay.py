"""The CAM overlay op against the numpy reference (a colour index may differ by one only
where float32 rounding of t * 255 explains it), against OpenCV, across thread counts,
dtypes and devices, and on the inputs it refuses."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge.ops._geometry import input_geometry
from radedge._native import kernels
from radedge.ops.cam_overlay import colormap_table, overlay_cam
from radedge.errors import NativeOpError
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..helpers import cpu_and_cuda, geometry_of, least_geometry
from . import reference_cam_overlay as reference

GREY_RAMP = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def _unexplained(got: np.ndarray, expected: dict, cam: np.ndarray, display: np.ndarray, alpha: float, floor: float):
    """Pixels where the op differs from the reference for a reason other than float32
    rounding: the op computes t in float32 (weights rounded to float32, products and sums
    rounded), so t may differ from the float64 t by a few units of 2^-24 of the values'
    magnitude over the range. Only there may the colour index, or the floor test, go the
    other way."""
    t_error = _t_error(expected, cam)
    t = expected["t"]
    z = t * 255
    grey = display.astype(np.int64)
    bad = []
    for y, x in zip(*np.nonzero((got != expected["image"]).any(axis=2))):
        nearest = np.floor(z[y, x] + 0.5)
        indices = {int(nearest)}
        if abs(z[y, x] - (np.floor(z[y, x]) + 0.5)) <= 255 * t_error:
            indices = {int(np.floor(z[y, x])), int(np.floor(z[y, x])) + 1} & set(range(256))
        shows = {bool(t[y, x] >= floor)}
        if abs(t[y, x] - floor) <= t_error:
            shows = {True, False}
        allowed = []
        for index, show in itertools.product(indices, shows):
            colour = expected["colours"][index]
            allowed.append(reference.blend(grey[y, x], colour, alpha) if show else np.full(3, grey[y, x], np.uint8))
        if not any((got[y, x] == option).all() for option in allowed):
            bad.append((y, x, got[y, x].tolist(), [a.tolist() for a in allowed], float(z[y, x])))
    return bad


def _t_error(expected, cam) -> float:
    """How far the op's float32 t may lie from the reference's float64 t (see _unexplained)."""
    low, high = expected["range"]
    magnitude = max(float(np.abs(cam.astype(np.float64)).max()), abs(low), abs(high), 1e-30)
    return 16 * 2.0**-24 * magnitude / (high - low) if high > low else 0.0


def _check(cam, display, geometry, input_size, *, colormap="turbo", alpha=0.4, floor=0.0, normalise="minmax",
           threads=0, device="cpu"):
    got = overlay_cam(cam, display, geometry, input_size=input_size, colormap=colormap, alpha=alpha,
                      normalise=normalise, floor=floor, threads=threads, device=device)
    low, high = (0.0, 1.0) if normalise == "minmax" else normalise
    expected = reference.overlay(cam, display, input_geometry(geometry, input_size), colormap, alpha, floor,
                                 "minmax" if normalise == "minmax" else "fixed", low, high)
    assert got.dtype == np.uint8 and got.shape == display.shape + (3,)
    if device == "cpu" and normalise == "minmax":
        # The range the op used: the float32 samples' extremes, to float32 rounding.
        low, high = kernels().cam_overlay_cpu(
            cam, display, np.empty_like(got), geometry=input_geometry(geometry, input_size), colormap=colormap,
            alpha=alpha, floor=floor, normalise="minmax")
        magnitude = float(np.abs(cam.astype(np.float64)).max())
        np.testing.assert_allclose([low, high], expected["range"], rtol=0, atol=4 * 2.0**-24 * magnitude)
    bad = _unexplained(got, expected, cam, display, alpha, floor)
    assert not bad, bad[:5]
    # Rounding moves an index only next to a half. Whole rows or columns of pixels can land
    # exactly on a half where the geometry is rational (hypothesis found a 35 x 29 display
    # over a 2 x 1 CAM on a 1-pixel input: t = (4r - 33) / 70 in row r, on a half every 7th
    # row), so the count of such pixels says nothing; what must hold is that the explanation
    # above admitted only pixels near a half: within 1/4 of a colour index, so an index off by
    # one anywhere else still fails. (1/100 held until hypothesis drew a display whose samples
    # span 0.014 of a CAM valued -3.5 in float16: float32 rounding of the samples is then
    # worth 0.06 of an index.)
    if (got != expected["image"]).any():
        assert 255 * _t_error(expected, cam) <= 0.25, "differences explained only by a loose tolerance"
    return got, expected


def _smooth_cam(rng, h, w, dtype=np.float32):
    """A blob-like map: what a class activation looks like, plus small noise."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cam = np.zeros((h, w))
    for _ in range(3):
        cy, cx, sigma = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.5, max(h, w) / 2)
        cam += rng.uniform(0.5, 3.0) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return (cam + rng.normal(0, 0.05, cam.shape) - 0.7).astype(dtype)


# --- against the reference ----------------------------------------------------------------


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "rows, columns, input_h, input_w, cam_h, cam_w, display_h, display_w",
    [
        (3000, 2000, 224, 224, 7, 7, 300, 200),  # letterbox, padding left and right
        (1000, 3000, 256, 256, 16, 16, 250, 750),  # padding above and below
        (2048, 2048, 512, 512, 32, 32, 1024, 1024),  # square, no padding
        (700, 900, 96, 160, 13, 11, 77, 99),  # odd sizes
        (500, 500, 64, 64, 1, 1, 40, 40),  # one cell
        (500, 400, 64, 64, 16, 16, 1, 1),  # one display pixel
        (300, 400, 64, 64, 32, 32, 9, 12),  # display coarser than the CAM
    ],
)
def test_matches_reference(device, dtype, rows, columns, input_h, input_w, cam_h, cam_w, display_h, display_w):
    rng = np.random.default_rng(rows + cam_w + display_w)
    geometry = resize_geometry(rows, columns, PreprocessSpec(input_h, input_w, "letterbox")).as_dict()
    cam = _smooth_cam(rng, cam_h, cam_w, dtype)
    display = rng.integers(0, 256, (display_h, display_w), dtype=np.uint8)
    _check(cam, display, geometry, (input_h, input_w), device=device)
    _check(cam, display, geometry, (input_h, input_w), colormap="jet", alpha=0.7, floor=0.35,
           normalise=(-0.5, 1.5), device=device)


@settings(max_examples=300, deadline=None)
@given(
    cam_h=st.integers(1, 12),
    cam_w=st.integers(1, 12),
    display_h=st.integers(1, 40),
    display_w=st.integers(1, 40),
    input_h=st.integers(1, 64),
    input_w=st.integers(1, 64),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float16]),
    colormap=st.sampled_from(["turbo", "jet", "random"]),
    alpha=st.floats(0.0, 1.0),
    floor=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    fixed=st.booleans(),
    flat=st.booleans(),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_property(cam_h, cam_w, display_h, display_w, input_h, input_w, data, dtype, colormap,
                                    alpha, floor, fixed, flat, threads, seed):
    rng = np.random.default_rng(seed)
    content_h = data.draw(st.integers(1, input_h))
    content_w = data.draw(st.integers(1, input_w))
    geometry = dict(
        geometry_of(10 * content_h, 10 * content_w, input_h, input_w), content_height=content_h,
        content_width=content_w, offset_y=data.draw(st.integers(0, input_h - content_h)),
        offset_x=data.draw(st.integers(0, input_w - content_w)), scale_y=0.1, scale_x=0.1,
    )
    cam = np.full((cam_h, cam_w), 0.25) if flat else rng.normal(0, 2.0, (cam_h, cam_w))
    cam = cam.astype(dtype)
    display = rng.integers(0, 256, (display_h, display_w), dtype=np.uint8)
    table = rng.integers(0, 256, (256, 3), dtype=np.uint8) if colormap == "random" else colormap
    normalise = (float(rng.uniform(-3, 0)), float(rng.uniform(0.1, 3))) if fixed else "minmax"
    _check(cam, display, geometry, (input_h, input_w), colormap=table, alpha=alpha, floor=floor,
           normalise=normalise, threads=threads)


def test_a_display_inside_one_cam_cell_is_flat():
    """Every display pixel samples the same CAM cell (a 1-pixel content at the bottom of an
    11-pixel input under a 3-cell CAM): the map is flat there, t = 0 everywhere, whatever
    float64 interpolation noise says (hypothesis found this case)."""
    rng = np.random.default_rng(0)
    geometry = dict(geometry_of(10, 10, 11, 1), content_height=1, content_width=1, offset_y=9, offset_x=0,
                    scale_y=0.1, scale_x=0.1)
    cam = rng.normal(0, 2.0, (3, 1)).astype(np.float32)
    display = rng.integers(0, 256, (3, 1), dtype=np.uint8)
    got, _ = _check(cam, display, geometry, (11, 1), alpha=1.0)
    assert (got == got[0, 0]).all()


# --- colour maps -------------------------------------------------------------------------------


def test_builtin_tables_are_the_published_definitions():
    np.testing.assert_array_equal(colormap_table("turbo"), reference.turbo_table())
    np.testing.assert_array_equal(colormap_table("jet"), reference.jet_table())
    assert colormap_table("turbo").shape == (256, 3) and colormap_table("turbo").dtype == np.uint8


def test_turbo_polynomial_follows_opencvs_turbo():
    """OpenCV ships the exact Turbo table. The published polynomial follows it to 6 levels
    on average and 32 at worst (blue at the dark end), so a mistyped coefficient, which
    moves a channel by far more, cannot pass."""
    exact = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]
    difference = np.abs(colormap_table("turbo").astype(int) - exact.astype(int))
    assert difference.max() <= 32, difference.max()
    assert difference.mean() <= 6.5, difference.mean()


def test_jet_is_opencvs_jet():
    exact = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1]
    difference = np.abs(colormap_table("jet").astype(int) - exact.astype(int))
    assert difference.max() <= 1, difference.max()


# --- against OpenCV and special cases ------------------------------------------------------------


@pytest.mark.parametrize("cam_shape, display_shape", [((16, 16), (1024, 1024)), ((7, 9), (300, 200)), ((32, 32), (20, 20))])
def test_stretch_samples_are_opencv_inter_linear(cam_shape, display_shape):
    """With the content filling the input, sampling is cv2.resize INTER_LINEAR of the CAM.
    The identity colour map and alpha 1 make the op write round(255 t) itself."""
    rng = np.random.default_rng(cam_shape[0])
    cam = _smooth_cam(rng, *cam_shape)
    display = np.zeros(display_shape, np.uint8)
    low, high = float(cam.min()), float(cam.max())
    got = overlay_cam(cam, display, geometry_of(64, 64, 64, 64), input_size=(64, 64), colormap=GREY_RAMP, alpha=1.0,
                      normalise=(low, high))
    resized = cv2.resize(cam, display_shape[::-1], interpolation=cv2.INTER_LINEAR).astype(np.float64)
    z = np.clip((resized - low) / (high - low), 0, 1) * 255
    expected = np.floor(z + 0.5)
    mismatch = got[..., 0] != expected
    # Only where OpenCV's float32 arithmetic and ours round t * 255 to different sides of a half.
    assert (np.abs(z[mismatch] - np.floor(z[mismatch]) - 0.5) < 1e-3).all()
    assert np.abs(got[..., 0].astype(int) - expected).max() <= 1
    assert mismatch.mean() < 0.01
    np.testing.assert_array_equal(got[..., 0], got[..., 2])


def test_alpha_zero_shows_the_grey_image_and_alpha_one_the_colours():
    rng = np.random.default_rng(1)
    cam = _smooth_cam(rng, 8, 8)
    display = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    geometry = geometry_of(32, 32, 32, 32)
    grey = overlay_cam(cam, display, geometry, input_size=(32, 32), alpha=0.0)
    np.testing.assert_array_equal(grey, np.repeat(display[..., None], 3, axis=2))
    colours = overlay_cam(cam, display, geometry, input_size=(32, 32), alpha=1.0, colormap="jet")
    assert set(map(tuple, colours.reshape(-1, 3))) <= set(map(tuple, colormap_table("jet")))


def test_minmax_reaches_both_ends_of_the_colour_map():
    rng = np.random.default_rng(2)
    cam = _smooth_cam(rng, 16, 16)
    got = overlay_cam(cam, np.zeros((128, 128), np.uint8), geometry_of(32, 32, 32, 32), input_size=(32, 32),
                      colormap=GREY_RAMP, alpha=1.0)
    assert got.min() == 0 and got.max() == 255


def test_floor_leaves_low_values_grey():
    cam = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 16).repeat(4, axis=0)
    display = np.full((4, 16), 77, np.uint8)
    got = overlay_cam(cam, display, geometry_of(4, 16, 4, 16), floor=0.5, alpha=1.0, colormap=GREY_RAMP,
                      normalise=(0.0, 1.0))
    t = np.linspace(0, 1, 16)
    np.testing.assert_array_equal(got[0, t < 0.5, 0], 77)
    np.testing.assert_array_equal(got[0, t >= 0.5, 0], np.floor(t[t >= 0.5] * 255 + 0.5))
    only_top = overlay_cam(cam, display, geometry_of(4, 16, 4, 16), input_size=(4, 16), floor=1.0, alpha=1.0,
                           colormap=GREY_RAMP)
    np.testing.assert_array_equal(only_top[0, :, 0], [77] * 15 + [255])


def test_flat_cam_is_the_first_colour_everywhere():
    got = overlay_cam(np.full((5, 5), 3.0, np.float32), np.full((10, 10), 100, np.uint8), geometry_of(20, 20, 20, 20),
                      input_size=(20, 20), colormap="jet", alpha=1.0)
    np.testing.assert_array_equal(got.reshape(-1, 3), np.repeat(colormap_table("jet")[:1], 100, axis=0))
    low, high = kernels().cam_overlay_cpu(
        np.full((5, 5), 3.0, np.float32), np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.uint8),
        geometry=geometry_of(20, 20, 20, 20), colormap="jet",
        alpha=1.0, floor=0.0, normalise="minmax")
    assert low == high == 3.0


def test_fixed_range_clamps():
    cam = np.array([[-5.0, 0.0, 0.5, 1.0, 9.0]], np.float32)
    got = overlay_cam(cam, np.zeros((1, 5), np.uint8), geometry_of(1, 5, 1, 5), input_size=(1, 5), colormap=GREY_RAMP,
                      alpha=1.0, normalise=(0.0, 1.0))
    np.testing.assert_array_equal(got[0, :, 0], [0, 0, 128, 255, 255])


def test_letterbox_padding_is_not_displayed():
    """The display maps onto the content only: a CAM that is hot in the padding and cold in
    the content shows no heat away from the content's edge cells."""
    geometry = resize_geometry(400, 100, PreprocessSpec(64, 64, "letterbox")).as_dict()  # content x in [24, 40)
    assert (geometry["offset_x"], geometry["content_width"]) == (24, 16)
    cam = np.zeros((16, 16), np.float32)
    cam[:, :6] = cam[:, 10:] = 100.0  # cells of 4 px; the content covers cells 6..9
    got = overlay_cam(cam, np.zeros((400, 100), np.uint8), geometry, input_size=(64, 64), colormap=GREY_RAMP,
                      alpha=1.0, normalise=(0.0, 100.0))
    # Display columns whose centres lie between the centres of cells 6 and 9 read only those.
    x_cam = ((np.arange(100) + 0.5) * 16 / 100 + 24) * 16 / 64
    inner = (x_cam >= 6.5) & (x_cam <= 9.5)
    assert inner.sum() > 60
    assert (got[:, inner] == 0).all()
    assert (got[:, ~inner, 0] > 0).all()


def test_thread_count_does_not_change_a_bit():
    rng = np.random.default_rng(3)
    cam = _smooth_cam(rng, 32, 32)
    display = rng.integers(0, 256, (700, 500), dtype=np.uint8)
    geometry = resize_geometry(1400, 1000, PreprocessSpec(256, 256, "letterbox")).as_dict()
    results = [overlay_cam(cam, display, geometry, input_size=(256, 256), floor=0.2, threads=t) for t in (1, 2, 3, 7)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_float16_reads_the_same_values_as_float32():
    rng = np.random.default_rng(4)
    cam = _smooth_cam(rng, 16, 16, np.float16)
    display = rng.integers(0, 256, (120, 90), dtype=np.uint8)
    geometry = geometry_of(64, 64, 64, 64)
    np.testing.assert_array_equal(overlay_cam(cam, display, geometry, input_size=(64, 64)),
                                  overlay_cam(cam.astype(np.float32), display, geometry, input_size=(64, 64)))


def test_writes_into_out_and_returns_it():
    rng = np.random.default_rng(5)
    cam = _smooth_cam(rng, 8, 8)
    display = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    out = np.zeros((30, 40, 3), np.uint8)
    result = overlay_cam(cam, display, geometry_of(16, 16, 16, 16), input_size=(16, 16), out=out)
    assert result is out
    np.testing.assert_array_equal(out, overlay_cam(cam, display, geometry_of(16, 16, 16, 16), input_size=(16, 16)))


# --- inputs the op refuses ------------------------------------------------------------------

CAM = np.zeros((8, 8), np.float32)
DISPLAY = np.zeros((20, 30), np.uint8)
GEOMETRY = geometry_of(32, 32, 32, 32)


def _call(cam=CAM, display=DISPLAY, geometry=GEOMETRY, **overrides):
    arguments = dict(input_size=(32, 32))
    arguments.update(overrides)
    return overlay_cam(cam, display, arguments.pop("geometry", geometry), **arguments)


def _with(value, index, dtype=np.float32):
    cam = CAM.copy()
    cam[index] = value
    return cam.astype(dtype)


@pytest.mark.parametrize(
    "cam, display, message",
    [
        (np.zeros((1, 8, 8), np.float32), DISPLAY, r"cam must be float32 or float16 \[h, w\] .*got float32 with shape \(1, 8, 8\)"),
        (CAM.astype(np.float64), DISPLAY, r"cam must be float32 or float16 \[h, w\] in native byte order; got float64"),
        (CAM.astype(np.int16), DISPLAY, "got int16"),
        (np.zeros((8, 16), np.float32)[:, ::2], DISPLAY, r"cam must be C-contiguous \[h, w\]"),
        (np.zeros((0, 8), np.float32), DISPLAY, r"cam must be \[h, w\] with 1 to"),
        (_with(np.nan, (2, 3)), DISPLAY, r"cam\[2, 3\] is nan"),
        (_with(np.inf, (7, 7), np.float16), DISPLAY, r"cam\[7, 7\] is inf; a class activation map must be finite"),
        (_with(-2e30, (0, 1)), DISPLAY, r"cam\[0, 1\] is -2e\+30; .* within \+-1e\+30"),
        (CAM, DISPLAY.astype(np.uint16), r"display must be a grey uint8 \[H, W\] image; got uint16"),
        (CAM, np.zeros((20, 30, 3), np.uint8), r"display must be a grey uint8 \[H, W\] image; got uint8 with shape \(20, 30, 3\)"),
        (CAM, np.zeros((20, 60), np.uint8)[:, ::2], r"display must be C-contiguous \[H, W\]"),
        (CAM, np.zeros((0, 30), np.uint8), r"display must be \[H, W\] with 1 to"),
    ],
)
def test_bad_arrays_are_a_value_error(cam, display, message):
    with pytest.raises(ValueError, match=message):
        _call(cam, display)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(alpha=-0.1), r"alpha must be in \[0, 1\]"),
        (dict(alpha=1.5), r"alpha must be in \[0, 1\]"),
        (dict(alpha=float("nan")), r"alpha must be in \[0, 1\]"),
        (dict(floor=1.01), r"floor must be in \[0, 1\]"),
        (dict(normalise=(1.0, 1.0)), r"fixed normalisation range needs finite low < high, each within \+-1e\+30; got low=1, high=1"),
        (dict(normalise=(0.0, 1e31)), "finite low < high"),
        (dict(normalise=(0.0, float("nan"))), "finite low < high"),
        (dict(normalise=(0.0, 1e300)), "finite low < high"),
        (dict(normalise=(0.0, 1.0, 2.0)), r"normalise must be 'minmax' or a \(low, high\) pair"),
        (dict(normalise="percentile"), "normalise must be 'minmax' or 'fixed'; got 'percentile'"),
        (dict(colormap="viridis"), "colormap must be 'turbo', 'jet' or a uint8 \\[256, 3\\] RGB table; got 'viridis'"),
        (dict(colormap=np.zeros((255, 3), np.uint8)), r"a colormap table must be uint8 \[256, 3\]"),
        (dict(colormap=np.zeros((256, 3), np.float32)), r"a colormap table must be uint8 \[256, 3\]"),
        (dict(colormap=np.zeros((3, 256), np.uint8).T), r"colormap must be C-contiguous"),
        (dict(colormap=[[0, 0, 0]] * 256), "colormap must be 'turbo', 'jet' or a uint8"),
        (dict(out=np.zeros((20, 31, 3), np.uint8)), r"out must be \[20, 30, 3\] to match the display"),
        (dict(out=np.zeros((20, 30, 4), np.uint8)), r"out must be uint8 \[H, W, 3\] \(RGB\)"),
        (dict(out=np.zeros((20, 30, 3), np.float32)), r"out must be uint8 \[H, W, 3\]"),
        (dict(out=np.zeros((20, 60, 3), np.uint8)[:, ::2]), r"out must be C-contiguous"),
        (dict(input_size=(16, 32)), r"input_size \(16, 32\) disagrees with the model input the geometry records"),
        (dict(input_size=(16, 32), geometry=least_geometry(GEOMETRY)),
         r"content rectangle .* inside the 32 x 16 model input"),
        (dict(threads=-2), "threads must be >= 0"),
    ],
)
def test_bad_parameters_are_a_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call(**overrides)


def test_read_only_output_is_refused_and_untouched():
    out = np.full((20, 30, 3), 9, np.uint8)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        _call(out=out)
    writeable = np.full((20, 30, 3), 9, np.uint8)
    with pytest.raises(ValueError):
        _call(cam=_with(np.nan, (0, 0)), out=writeable)
    assert (writeable == 9).all()


def test_output_overlapping_the_display_is_refused():
    memory = np.zeros(20 * 30 * 4, np.uint8)
    display = memory[: 20 * 30].reshape(20, 30)
    out = memory[20 * 30 - 3 :][: 20 * 30 * 3].reshape(20, 30, 3)
    with pytest.raises(ValueError, match="out overlaps the display image"):
        _call(display=display, out=out)
    _call(display=display, out=memory[20 * 30 :].reshape(20, 30, 3))


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="cam must be a numpy array"):
        _call(cam=CAM.tolist())


# --- devices -------------------------------------------------------------------------------


def test_unknown_device_names_the_implemented_ones():
    with pytest.raises(NativeOpError, match=r"cam_overlay has no implementation for device 'npu'; implemented: cpu, cuda"):
        _call(device="npu")


def test_cuda_without_a_device_says_what_is_available():
    count, _ = kernels().cuda_device_count()
    if count > 0:
        pytest.skip("a CUDA device is visible here; this checks the refusal where there is none")
    with pytest.raises(NativeOpError, match=r"cam_overlay cannot run on 'cuda'.*Available devices: cpu"):
        _call(device="cuda")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "cam_shape, display_shape, normalise, floor",
    [
        ((16, 16), (1024, 1024), "minmax", 0.0),
        ((32, 32), (1024, 1024), (-1.0, 2.0), 0.3),
        ((7, 13), (333, 517), "minmax", 0.5),
        ((1, 1), (5, 3), "minmax", 0.0),
        ((64, 64), (17, 9), (0.0, 1.0), 1.0),
    ],
)
def test_cuda_matches_cpu_bit_for_bit(cam_shape, display_shape, normalise, floor, dtype):
    rng = np.random.default_rng(display_shape[0])
    cam = _smooth_cam(rng, *cam_shape, dtype)
    display = rng.integers(0, 256, display_shape, dtype=np.uint8)
    geometry = resize_geometry(display_shape[0] * 3, display_shape[1] * 3, PreprocessSpec(256, 256)).as_dict()
    arguments = dict(input_size=(256, 256), normalise=normalise, floor=floor, alpha=0.55)
    cpu = overlay_cam(cam, display, geometry, **arguments)
    gpu = overlay_cam(cam, display, geometry, device="cuda", **arguments)
    # The same float32 operations in the same order, none fused, and an integer blend.
    np.testing.assert_array_equal(gpu, cpu)
    call = dict(geometry=geometry, colormap="turbo", alpha=0.55, floor=floor,
                normalise="minmax" if normalise == "minmax" else "fixed",
                **({} if normalise == "minmax" else dict(low=normalise[0], high=normalise[1])))
    cpu_range = kernels().cam_overlay_cpu(cam, display, np.empty_like(cpu), **call)
    gpu_range = kernels().cam_overlay_cuda_host(cam, display, np.empty_like(cpu), **call)
    assert cpu_range == gpu_range
