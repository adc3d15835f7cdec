"""The fused preprocess op against the numpy reference, against OpenCV, and against itself
across thread counts, output dtypes and devices; crops, float32 pixels and batches too."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.ops.preprocess import (
    Crop,
    FloatWindow,
    PreprocessSpec,
    ResizeGeometry,
    center_crop,
    preprocess,
    preprocess_batch,
    preprocess_into,
    resize_geometry,
)

from ..helpers import cpu_and_cuda, geometry_of
from . import reference


def _pixels(rng: np.random.Generator, rows: int, columns: int, dtype: str) -> np.ndarray:
    """Stored values over the range a LUT of a few hundred entries covers, plus strays outside it."""
    if dtype == "uint8":
        values = rng.integers(0, 256, (rows, columns))
    elif dtype == "uint16":
        values = rng.integers(0, 4096, (rows, columns))
        values[rng.random((rows, columns)) < 0.02] = 65535
    else:
        values = rng.integers(-1024, 3072, (rows, columns))
        values[rng.random((rows, columns)) < 0.02] = -32768
    return values.astype(dtype)


def _lut(rng: np.random.Generator, entries: int) -> np.ndarray:
    # Random entries, not a ramp: a wrong index or an off-by-one weight cannot hide.
    return rng.random(entries).astype(np.float32)


def _first_value(dtype: str) -> int:
    return {"uint8": 20, "uint16": 100, "int16": -1024}[dtype]


def _tolerance(spec: PreprocessSpec) -> dict:
    """Absolute tolerance from float32 accumulation (values in [0, 1]) scaled by 1/std; float16
    adds one unit in the last place of the result."""
    atol = 1e-5 / min(spec.std)
    return {"rtol": 2.0**-10, "atol": atol} if spec.dtype == "float16" else {"rtol": 1e-6, "atol": atol}


def _check_against_reference(pixels, lut, first, spec, threads=0, device="cpu"):
    out, geometry = preprocess(pixels, lut, first, spec, threads=threads, device=device)
    expected = reference.preprocess(
        pixels, lut, first, spec.height, spec.width, spec.resize, spec.pad_value, spec.mean, spec.std, spec.channels
    )
    assert out.dtype == np.dtype(spec.dtype) and out.shape == (1, spec.channels, spec.height, spec.width)
    np.testing.assert_allclose(out[0].astype(np.float64), expected, **_tolerance(spec))
    rows, columns = pixels.shape
    assert geometry.as_dict() == geometry_of(rows, columns, spec.height, spec.width, spec.resize)
    return out


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize(
    "rows, columns, height, width, resize",
    [
        (1, 1, 1, 1, "letterbox"),
        (1, 1, 7, 5, "letterbox"),
        (1, 1, 7, 5, "stretch"),
        (1, 57, 8, 8, "letterbox"),  # content 1 row high
        (57, 1, 8, 8, "stretch"),
        (3, 2, 1, 1, "stretch"),
        (17, 33, 16, 16, "letterbox"),  # odd sizes, both axes shrink
        (33, 17, 64, 40, "letterbox"),  # both grow
        (513, 257, 512, 512, "letterbox"),  # rows shrink by one pixel, columns grow
        (60, 300, 128, 128, "stretch"),  # rows grow, columns shrink
        (1001, 999, 1000, 998, "stretch"),
        (2001, 9, 2000, 9, "stretch"),  # 0.0005-pixel slivers at both ends of spans, ignored
        (5, 2001, 5, 2000, "stretch"),
        (700, 1000, 224, 224, "letterbox"),
        (300, 600, 128, 128, "letterbox"),  # padding above and below
    ],
)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_matches_reference(device, rows, columns, height, width, resize, dtype):
    rng = np.random.default_rng(rows * 7919 + columns)
    pixels = _pixels(rng, rows, columns, dtype)
    lut = _lut(rng, 3000)
    spec = PreprocessSpec(height, width, resize=resize, pad_value=0.3, mean=(0.45,), std=(0.22,))
    _check_against_reference(pixels, lut, _first_value(dtype), spec, device=device)


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize(
    "mean, std", [((0.0,), (1.0,)), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), ((-3.0,), (7.5,))]
)
def test_channels_dtypes_and_normalisation(device, out_dtype, mean, std):
    rng = np.random.default_rng(5)
    pixels = _pixels(rng, 123, 77, "uint16")
    spec = PreprocessSpec(48, 40, "letterbox", pad_value=0.7, mean=mean, std=std, channels=3, dtype=out_dtype)
    out = _check_against_reference(pixels, _lut(rng, 4096), 0, spec, device=device)
    if len(mean) == 1:
        np.testing.assert_array_equal(out[0, 0], out[0, 2])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 40),
    columns=st.integers(1, 40),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    resize=st.sampled_from(["stretch", "letterbox"]),
    dtype=st.sampled_from(["uint8", "uint16", "int16"]),
    lut_entries=st.integers(1, 400),
    lut_first_value=st.integers(-300, 300),
    channels=st.sampled_from([1, 3]),
    out_dtype=st.sampled_from(["float32", "float16"]),
    mean=st.floats(-1.0, 1.0),
    std=st.floats(0.05, 4.0),
    pad_value=st.floats(0.0, 1.0),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_property(
    rows, columns, height, width, resize, dtype, lut_entries, lut_first_value, channels, out_dtype, mean, std,
    pad_value, threads, seed,
):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    # Stored values around the table, so many fall outside it and must clamp.
    low = max(int(info.min), lut_first_value - 50)
    high = min(int(info.max), lut_first_value + lut_entries + 50)
    pixels = rng.integers(low, max(low, high) + 1, (rows, columns)).astype(dtype)
    spec = PreprocessSpec(height, width, resize, pad_value, (mean,), (std,), channels, out_dtype)
    _check_against_reference(pixels, _lut(rng, lut_entries), lut_first_value, spec, threads=threads)


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_thread_count_does_not_change_a_bit(resize):
    rng = np.random.default_rng(11)
    pixels = _pixels(rng, 600, 1100, "uint16")
    lut = _lut(rng, 4096)
    spec = PreprocessSpec(256, 160, resize, pad_value=0.2, mean=(0.4,), std=(0.3,), channels=3)
    results = [preprocess(pixels, lut, 0, spec, threads=threads)[0] for threads in (1, 2, 3, 7)]
    for result in results[1:]:
        np.testing.assert_array_equal(result.view(np.uint32), results[0].view(np.uint32))


def test_writes_only_its_slot_and_every_pixel_of_it():
    rng = np.random.default_rng(2)
    pixels = _pixels(rng, 300, 700, "uint16")  # letterbox: padding above and below the content
    spec = PreprocessSpec(96, 96, "letterbox", pad_value=0.5, channels=3)
    out = np.full((3, 3, 96, 96), np.nan, dtype=np.float32)
    geometry = preprocess_into(pixels, _lut(rng, 4096), 0, out, 1, spec, threads=3)
    assert geometry.offset_y > 0
    assert np.isnan(out[0]).all() and np.isnan(out[2]).all()
    assert not np.isnan(out[1]).any()
    assert (out[1, :, : geometry.offset_y] == 0.5).all()
    assert (out[1, :, geometry.offset_y + geometry.content_height :] == 0.5).all()


def test_float16_is_float32_rounded_to_nearest_even():
    rng = np.random.default_rng(3)
    pixels = _pixels(rng, 211, 97, "uint16")
    lut = _lut(rng, 4096)
    # std spans results that are float16 subnormals (1e-4 .. 6e-5), ordinary values, and
    # values beyond 65504 that must become infinity.
    for std in (1e4, 1.0, 3e-6):
        common = dict(height=64, width=33, resize="stretch", mean=(0.5,), std=(std,))
        single, _ = preprocess(pixels, lut, 0, PreprocessSpec(**common, dtype="float32"))
        half, _ = preprocess(pixels, lut, 0, PreprocessSpec(**common, dtype="float16"))
        with np.errstate(over="ignore"):
            rounded = single.astype(np.float16)
        np.testing.assert_array_equal(half.view(np.uint16), rounded.view(np.uint16))


def test_strided_rows_read_like_a_contiguous_copy():
    rng = np.random.default_rng(4)
    wide = _pixels(rng, 90, 130, "int16")
    lut = _lut(rng, 4096)
    spec = PreprocessSpec(40, 40, "letterbox")
    for view in (wide[:, 10:110], wide[::3, 5:70]):
        assert not view.flags.c_contiguous
        got, _ = preprocess(view, lut, -1024, spec)
        expected, _ = preprocess(np.ascontiguousarray(view), lut, -1024, spec)
        np.testing.assert_array_equal(got, expected)


def _content(out: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    y, x = geometry.offset_y, geometry.offset_x
    return out[0, 0, y : y + geometry.content_height, x : x + geometry.content_width]


@pytest.mark.parametrize(
    "rows, columns, height, width, resize",
    [
        (3000, 3000, 512, 512, "letterbox"),
        (2500, 2048, 512, 512, "letterbox"),
        (1001, 999, 1000, 998, "stretch"),
        (2001, 2001, 2000, 2000, "stretch"),  # slivers OpenCV ignores
        (640, 480, 224, 224, "stretch"),
        (97, 31, 13, 7, "stretch"),
    ],
)
def test_both_axes_shrinking_matches_opencv_inter_area(rows, columns, height, width, resize):
    rng = np.random.default_rng(rows + columns)
    pixels = _pixels(rng, rows, columns, "uint16")
    lut = _lut(rng, 4096)
    out, geometry = preprocess(pixels, lut, 0, PreprocessSpec(height, width, resize))
    assert geometry.content_height < rows and geometry.content_width < columns
    display = lut[np.clip(pixels.astype(np.int64), 0, len(lut) - 1)]
    expected = cv2.resize(
        display, (geometry.content_width, geometry.content_height), interpolation=cv2.INTER_AREA
    ).reshape(geometry.content_height, geometry.content_width)
    np.testing.assert_allclose(_content(out, geometry), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "rows, columns, height, width, resize",
    [
        (1, 1, 5, 5, "stretch"),
        (2, 3, 9, 11, "stretch"),
        (31, 17, 100, 64, "stretch"),
        (256, 200, 512, 512, "letterbox"),
    ],
)
def test_both_axes_growing_matches_opencv_inter_linear(rows, columns, height, width, resize):
    rng = np.random.default_rng(rows + columns)
    pixels = _pixels(rng, rows, columns, "uint8")
    lut = _lut(rng, 256)
    out, geometry = preprocess(pixels, lut, 0, PreprocessSpec(height, width, resize))
    assert geometry.content_height > rows and geometry.content_width > columns
    expected = cv2.resize(
        lut[pixels], (geometry.content_width, geometry.content_height), interpolation=cv2.INTER_LINEAR
    ).reshape(geometry.content_height, geometry.content_width)
    np.testing.assert_allclose(_content(out, geometry), expected, rtol=0, atol=1e-4)


def test_geometry_is_the_documented_formula():
    sizes = [1, 2, 3, 5, 7, 224, 255, 256, 511, 512, 513, 1000, 2048, 3000, 4095]
    for rows in sizes:
        for columns in sizes:
            for height, width in ((1, 1), (3, 5), (224, 224), (512, 384), (640, 512)):
                for resize in ("stretch", "letterbox"):
                    spec = PreprocessSpec(height, width, resize)
                    got = resize_geometry(rows, columns, spec).as_dict()
                    assert got == geometry_of(rows, columns, height, width, resize), (rows, columns, spec)


def test_geometry_maps_content_edges_to_source_edges():
    g = resize_geometry(3000, 2000, PreprocessSpec(512, 512, "letterbox"))
    assert (g.content_height, g.content_width, g.offset_y, g.offset_x) == (512, 341, 0, 85)
    x_src, y_src = g.to_source(np.array([g.offset_x, g.offset_x + g.content_width]), np.array([0, 512]))
    np.testing.assert_allclose(x_src, [0, 2000])
    np.testing.assert_allclose(y_src, [0, 3000])
    x_out, y_out = g.to_output(*g.to_source(np.array([100.25, 300.5]), np.array([7.0, 511.5])))
    np.testing.assert_allclose(x_out, [100.25, 300.5])
    np.testing.assert_allclose(y_out, [7.0, 511.5])


# --- inputs the op refuses ---------------------------------------------------------------

SPEC = PreprocessSpec(8, 8, "letterbox", channels=1)
LUT = np.linspace(0, 1, 256, dtype=np.float32)
GOOD_PIXELS = np.zeros((5, 6), np.uint16)


def _out(shape=(2, 1, 8, 8), dtype=np.float32):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize(
    "pixels, lut, out, slot, message",
    [
        (np.zeros((3, 4, 5)), LUT, _out(), 0, r"uint8, uint16, int16 or float32 \[rows, columns\].*got float64 with shape \(3, 4, 5\)"),
        (np.zeros(12, np.uint16), LUT, _out(), 0, r"got uint16 with shape \(12,\)"),
        (np.zeros((3, 4), np.int32), LUT, _out(), 0, "got int32"),
        (np.zeros((3, 4), ">u2"), LUT, _out(), 0, "native byte order"),
        (np.zeros((3, 4), np.uint16, order="F"), LUT, _out(), 0, "contiguous columns"),
        (np.zeros((4, 4), np.uint16)[::-1], LUT, _out(), 0, "top to bottom"),
        (np.zeros((0, 5), np.uint16), LUT, _out(), 0, "empty"),
        (np.zeros((5, 0), np.uint16), LUT, _out(), 0, "empty"),
        (GOOD_PIXELS, np.zeros(0, np.float32), _out(), 0, "lut is empty"),
        (GOOD_PIXELS, LUT.astype(np.float64), _out(), 0, "lut must be a float32"),
        (GOOD_PIXELS, LUT.reshape(16, 16), _out(), 0, "lut must be a float32"),
        (GOOD_PIXELS, LUT[::2], _out(), 0, "lut must be contiguous"),
        (GOOD_PIXELS, LUT, _out((2, 3, 8, 8)), 0, r"out must be \[N, 1, 8, 8\]"),
        (GOOD_PIXELS, LUT, _out((2, 1, 8, 9)), 0, r"out must be \[N, 1, 8, 8\]"),
        (GOOD_PIXELS, LUT, _out((1, 8, 8)), 0, r"\[N, C, H, W\]"),
        (GOOD_PIXELS, LUT, _out(dtype=np.float64), 0, "float32 or float16"),
        (GOOD_PIXELS, LUT, _out(dtype=np.float16), 0, "spec asks for float32"),
        (GOOD_PIXELS, LUT, _out((2, 1, 8, 16))[..., ::2], 0, "C-contiguous"),
        (GOOD_PIXELS, LUT, np.zeros((8, 8, 1, 2), np.float32).T, 0, "C-contiguous"),
        (GOOD_PIXELS, LUT, _out(), 2, "slot 2 is outside the batch of 2"),
        (GOOD_PIXELS, LUT, _out(), -1, "slot -1 is outside"),
    ],
)
def test_bad_input_is_a_value_error(pixels, lut, out, slot, message):
    before = out.copy()
    with pytest.raises(ValueError, match=message):
        preprocess_into(pixels, lut, 0, out, slot, SPEC)
    np.testing.assert_array_equal(out, before)


def test_read_only_output_is_refused():
    out = _out()
    out.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        preprocess_into(GOOD_PIXELS, LUT, 0, out, 0, SPEC)


def test_lut_first_value_outside_int32_is_refused():
    with pytest.raises(ValueError, match="lut_first_value must be a stored value in the int32 range"):
        preprocess_into(GOOD_PIXELS, LUT, -(2**62), _out(), 0, SPEC)


def test_negative_thread_count_is_refused():
    with pytest.raises(ValueError, match="threads must be >= 0"):
        preprocess_into(GOOD_PIXELS, LUT, 0, _out(), 0, SPEC, threads=-1)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(std=(0.0,)), "std must be > 0"),
        (dict(std=(-1.0,)), "std must be > 0"),
        (dict(std=(float("nan"),)), "std must be finite"),
        (dict(mean=(0.1, 0.2)), "mean needs 1 value"),
        (dict(channels=2), "channels must be 1 or 3"),
        (dict(height=0), "height must be a positive integer"),
        (dict(resize="crop"), "resize must be 'stretch' or 'letterbox'"),
        (dict(dtype="float64"), "dtype must be 'float32' or 'float16'"),
    ],
)
def test_bad_spec_is_a_value_error(fields, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(**{"height": 8, "width": 8, **fields})


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(std=[0.0]), r"every std value must be finite and > 0; got 0"),
        (dict(std=[float("inf")]), r"every std value must be finite and > 0"),
        (dict(mean=[0.0, 0.0]), r"mean needs 1 value"),
        (dict(channels=2), r"channels must be 1 or 3"),
        (dict(resize="fit"), r"resize must be 'stretch' or 'letterbox'"),
        (dict(pad_value=float("nan")), r"pad_value must be a finite number"),
        (dict(height=0), r"model input size must be 1 to"),
    ],
)
def test_native_op_checks_its_own_arguments(arguments, message):
    """The binding is callable without PreprocessSpec, so it must refuse bad values itself."""
    call = dict(height=8, width=8, channels=1, dtype="float32", resize="letterbox", pad_value=0.0, mean=[0.0], std=[1.0])
    call.update(arguments)
    with pytest.raises(ValueError, match=message):
        kernels().preprocess_cpu(GOOD_PIXELS, LUT, 0, _out(), 0, **call)


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="pixels must be a numpy array"):
        preprocess_into([[1, 2], [3, 4]], LUT, 0, _out(), 0, SPEC)


# --- devices -------------------------------------------------------------------------------


def test_unknown_device_names_the_implemented_ones():
    with pytest.raises(NativeOpError, match=r"no implementation for device 'tpu'; implemented: cpu, cuda"):
        preprocess(GOOD_PIXELS, LUT, 0, SPEC, device="tpu")


def test_cuda_without_a_device_says_what_is_available():
    count, why = kernels().cuda_device_count()
    if count > 0:
        pytest.skip("a CUDA device is visible here; this checks the refusal where there is none")
    with pytest.raises(NativeOpError, match=r"cannot run on 'cuda'.*Available devices: cpu"):
        preprocess(GOOD_PIXELS, LUT, 0, SPEC, device="cuda")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize(
    "rows, columns, dtype, spec_fields",
    [
        (3000, 3000, "uint16", dict(height=512, width=512, resize="letterbox")),
        (2500, 2048, "uint16", dict(height=512, width=512, resize="letterbox", channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))),
        (333, 517, "int16", dict(height=224, width=224, resize="stretch", mean=(0.5,), std=(0.25,))),
        (100, 80, "uint8", dict(height=256, width=300, resize="letterbox", pad_value=0.25)),
        (1, 1, "uint16", dict(height=3, width=5, resize="stretch")),
    ],
)
def test_cuda_matches_cpu(rows, columns, dtype, spec_fields, out_dtype):
    rng = np.random.default_rng(rows * 31 + columns)
    pixels = _pixels(rng, rows, columns, dtype)
    lut = _lut(rng, 4096)
    first = _first_value(dtype)
    spec = PreprocessSpec(**spec_fields, dtype=out_dtype)
    # Non-contiguous rows exercise the 2-D upload.
    strided = np.zeros((rows, columns + 3), dtype)[:, :columns]
    strided[...] = pixels
    gpu = np.full((2, *spec.shape), np.nan, dtype=out_dtype)
    gpu_geometry = preprocess_into(strided, lut, first, gpu, 1, spec, device="cuda")
    cpu, cpu_geometry = preprocess(pixels, lut, first, spec, device="cpu")
    assert gpu_geometry == cpu_geometry
    assert np.isnan(gpu[0]).all()
    if out_dtype == "float32":
        np.testing.assert_allclose(gpu[1], cpu[0], rtol=0, atol=1e-5)
    else:
        # The same float32 value rounds to the same float16; 1 ulp covers a last-bit
        # float32 difference at a rounding boundary.
        np.testing.assert_allclose(gpu[1].astype(np.float32), cpu[0].astype(np.float32), rtol=2.0**-10, atol=1e-5)


# --- crops ---------------------------------------------------------------------------------


def _check_crop(pixels, lut, first, spec, crop, threads=0, device="cpu", window=None):
    """The op with a crop against the reference, and its geometry against the documented one."""
    intensity = lut if pixels.dtype != np.float32 else (FloatWindow(*window) if window else None)
    out, geometry = preprocess(pixels, intensity, first, spec, threads=threads, device=device, crop=crop)
    expected = reference.preprocess(
        pixels, lut, first, spec.height, spec.width, spec.resize, spec.pad_value, spec.mean, spec.std, spec.channels,
        crop=crop, window=window,
    )
    np.testing.assert_allclose(out[0].astype(np.float64), expected, **_tolerance(spec))
    rows, columns = pixels.shape
    assert geometry.as_dict() == geometry_of(rows, columns, spec.height, spec.width, spec.resize, crop)
    return out, geometry


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize(
    "rows, columns, crop, height, width, resize",
    [
        (300, 400, (50, 20, 200, 260), 128, 128, "letterbox"),  # tall crop of a wide image
        (300, 400, (0, 0, 1, 1), 16, 16, "letterbox"),  # one pixel
        (300, 400, (399, 299, 1, 1), 5, 7, "stretch"),  # the last pixel
        (300, 400, (17, 3, 383, 1), 8, 64, "letterbox"),  # one row, to the right edge
        (300, 400, (250, 0, 3, 300), 64, 8, "stretch"),  # three columns
        (2001, 999, (1, 1, 997, 1999), 300, 300, "letterbox"),  # odd sizes, shrinking
        (61, 47, (5, 9, 33, 21), 200, 100, "stretch"),  # growing
    ],
)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_crop_matches_reference(device, rows, columns, crop, height, width, resize, dtype):
    rng = np.random.default_rng(rows + 3 * columns + crop[0])
    pixels = _pixels(rng, rows, columns, dtype)
    spec = PreprocessSpec(height, width, resize=resize, pad_value=0.2, mean=(0.4,), std=(0.3,))
    _check_crop(pixels, _lut(rng, 3000), _first_value(dtype), spec, crop, device=device)


def test_crop_reads_only_the_crop():
    """A crop gives the bits of the cropped copy, whatever the pixels around it hold."""
    rng = np.random.default_rng(21)
    pixels = _pixels(rng, 500, 420, "uint16")
    lut = _lut(rng, 4096)
    spec = PreprocessSpec(96, 80, "letterbox", pad_value=0.1, channels=3)
    crop = Crop(33, 71, 301, 250)
    copy = np.ascontiguousarray(pixels[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width])
    expected, copy_geometry = preprocess(copy, lut, 0, spec)
    scrambled = pixels.copy()
    scrambled[: crop.y] = 65535
    scrambled[:, crop.x + crop.width :] = 0
    for source in (pixels, scrambled):
        got, geometry = preprocess(source, lut, 0, spec, crop=crop)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    assert geometry.crop == crop
    assert (geometry.content_height, geometry.content_width) == (copy_geometry.content_height, copy_geometry.content_width)
    assert (geometry.scale_x, geometry.scale_y) == (copy_geometry.scale_x, copy_geometry.scale_y)


def test_whole_image_crop_is_the_default():
    rng = np.random.default_rng(22)
    pixels = _pixels(rng, 123, 77, "int16")
    lut = _lut(rng, 4096)
    spec = PreprocessSpec(50, 60, "letterbox")
    plain, plain_geometry = preprocess(pixels, lut, -1024, spec)
    for crop in ((0, 0, 77, 123), (0, 0, -1, -1), (0, 0, 77, -1)):
        cropped, geometry = preprocess(pixels, lut, -1024, spec, crop=crop)
        np.testing.assert_array_equal(cropped.view(np.uint32), plain.view(np.uint32))
        assert geometry == plain_geometry
    assert plain_geometry.crop == Crop(0, 0, 77, 123)


def test_crop_to_the_edge_with_minus_one():
    rng = np.random.default_rng(23)
    pixels = _pixels(rng, 40, 50, "uint8")
    lut = _lut(rng, 256)
    spec = PreprocessSpec(16, 16, "stretch")
    a, ga = preprocess(pixels, lut, 0, spec, crop=(10, 5, -1, -1))
    b, gb = preprocess(pixels, lut, 0, spec, crop=(10, 5, 40, 35))
    np.testing.assert_array_equal(a, b)
    assert ga == gb and ga.crop == Crop(10, 5, 40, 35)


def test_geometry_maps_through_the_crop():
    g = resize_geometry(3000, 2000, PreprocessSpec(512, 512, "letterbox"), crop=(100, 400, 1500, 2000))
    assert (g.crop_x, g.crop_y, g.crop_width, g.crop_height) == (100, 400, 1500, 2000)
    assert (g.content_height, g.content_width, g.offset_y, g.offset_x) == (512, 384, 0, 64)
    assert g.scale_y == 512 / 2000 and g.scale_x == 384 / 1500
    # The crop's edges land on the content's edges, and the two maps are inverse.
    x_out, y_out = g.to_output(np.array([100.0, 1600.0]), np.array([400.0, 2400.0]))
    np.testing.assert_allclose(x_out, [64, 448])
    np.testing.assert_allclose(y_out, [0, 512])
    x_src, y_src = g.to_source(np.array([70.25, 300.5]), np.array([7.0, 511.5]))
    np.testing.assert_allclose(g.to_output(x_src, y_src), ([70.25, 300.5], [7.0, 511.5]))
    # A geometry made without the crop fields (as before crops existed) is the whole image.
    old = ResizeGeometry(3000, 2000, 512, 341, 0, 85, 512 / 3000, 341 / 2000, input_height=512, input_width=512)
    assert old.crop == Crop(0, 0, 2000, 3000)
    assert old == resize_geometry(3000, 2000, PreprocessSpec(512, 512, "letterbox"))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 30),
    columns=st.integers(1, 30),
    data=st.data(),
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    resize=st.sampled_from(["stretch", "letterbox"]),
    dtype=st.sampled_from(["uint8", "uint16", "int16", "float32"]),
    out_dtype=st.sampled_from(["float32", "float16"]),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_crops_and_float_pixels_match_reference_property(
    rows, columns, data, height, width, resize, dtype, out_dtype, threads, seed
):
    x = data.draw(st.integers(0, columns - 1), label="crop x")
    y = data.draw(st.integers(0, rows - 1), label="crop y")
    crop = (x, y, data.draw(st.integers(1, columns - x), label="crop width"), data.draw(st.integers(1, rows - y), label="crop height"))
    rng = np.random.default_rng(seed)
    spec = PreprocessSpec(height, width, resize, pad_value=0.3, mean=(0.2,), std=(0.7,), dtype=out_dtype)
    if dtype == "float32":
        pixels = rng.uniform(-500.0, 3000.0, (rows, columns)).astype(np.float32)
        window = (
            data.draw(st.floats(-600.0, 3100.0), label="window center"),
            data.draw(st.floats(0.5, 5000.0), label="window width"),
            data.draw(st.booleans(), label="invert"),
        )
        _check_crop(pixels, None, 0, spec, crop, threads=threads, window=window)
    else:
        pixels = _pixels(rng, rows, columns, dtype)
        _check_crop(pixels, _lut(rng, 3000), _first_value(dtype), spec, crop, threads=threads)


@pytest.mark.parametrize(
    "crop, message",
    [
        ((-1, 0, 2, 2), r"crop \(x=-1, y=0, width=2, height=2\) starts outside of the 5 rows x 6 columns image"),
        ((0, -3, 2, 2), "starts outside"),
        ((6, 0, 1, 1), "starts past the end"),
        ((0, 5, 1, 1), "starts past the end"),
        ((0, 0, 0, 2), "is empty"),
        ((0, 0, 2, 0), "is empty"),
        ((1, 1, -2, 2), "is empty"),
        ((1, 0, 6, 2), "reaches outside"),
        ((0, 1, 2, 5), "reaches outside"),
        ((0, 0, 2**62, 1), "reaches outside"),
    ],
)
def test_crop_outside_the_image_or_empty_is_a_value_error(crop, message):
    out = _out()
    before = out.copy()
    with pytest.raises(ValueError, match=message):
        preprocess_into(GOOD_PIXELS, LUT, 0, out, 0, SPEC, crop=crop)
    np.testing.assert_array_equal(out, before)
    with pytest.raises(ValueError, match=message):
        resize_geometry(5, 6, SPEC, crop=crop)


@pytest.mark.parametrize("crop", [(1, 2, 3), (0.0, 0, 1, 1), "0,0,1,1", (True, 0, 1, 1)])
def test_crop_must_be_four_integers(crop):
    with pytest.raises(ValueError, match=r"crop must be \(x, y, width, height\), four integers"):
        preprocess_into(GOOD_PIXELS, LUT, 0, _out(), 0, SPEC, crop=crop)


@pytest.mark.parametrize("rows, columns", [(1, 65535), (65535, 1), (1, 16000)])
def test_letterbox_keeps_at_least_one_pixel_of_image(rows, columns):
    """An extreme aspect ratio rounds the short side to 0; the letterbox keeps one pixel of
    content there, so the model never gets an input with no image in it."""
    spec = PreprocessSpec(8, 8, "letterbox", pad_value=0.5)
    pixels = np.full((rows, columns), 200, np.uint8)
    out, geometry = preprocess(pixels, LUT, 0, spec)
    assert geometry.content_height >= 1 and geometry.content_width >= 1
    assert max(geometry.content_height, geometry.content_width) == 8
    image = out[0, 0, geometry.offset_y : geometry.offset_y + geometry.content_height,
                geometry.offset_x : geometry.offset_x + geometry.content_width]
    # Thousands of area weights summed in float32: a constant comes back to a few ulp.
    np.testing.assert_allclose(image, LUT[200], rtol=1e-4)
    assert (out == 0.5).sum() == 64 - image.size


# --- centre crops --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, columns, fraction, aspect, expected",
    [
        (100, 200, 0.5, None, Crop(50, 25, 100, 50)),
        (101, 201, 0.5, None, Crop(50, 25, 101, 51)),  # 50.5 and 100.5 round half up
        (100, 200, None, 1.0, Crop(50, 0, 100, 100)),
        (200, 100, None, 1.0, Crop(0, 50, 100, 100)),
        (300, 400, None, 4 / 3, Crop(0, 0, 400, 300)),
        (300, 400, None, 0.5, Crop(125, 0, 150, 300)),
        (300, 400, 0.8, 1.0, Crop(80, 30, 240, 240)),
        (1, 1, 0.1, None, Crop(0, 0, 1, 1)),
        (3, 1000, None, 1.0, Crop(498, 0, 3, 3)),
        (1, 1000, None, 1e-6, Crop(499, 0, 1, 1)),
    ],
)
def test_center_crop(rows, columns, fraction, aspect, expected):
    assert center_crop(rows, columns, fraction=fraction, aspect=aspect) == expected


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 5000), columns=st.integers(1, 5000), fraction=st.none() | st.floats(1e-4, 1.0),
       aspect=st.none() | st.floats(0.01, 100.0))
def test_center_crop_is_centred_inside_and_of_the_asked_shape(rows, columns, fraction, aspect):
    if fraction is None and aspect is None:
        return
    crop = center_crop(rows, columns, fraction=fraction, aspect=aspect)
    assert crop.width >= 1 and crop.height >= 1
    assert 0 <= crop.x and crop.x + crop.width <= columns and 0 <= crop.y and crop.y + crop.height <= rows
    assert crop.x == (columns - crop.width) // 2 and crop.y == (rows - crop.height) // 2
    if aspect is not None and fraction is None:
        # The side the aspect leaves whole is the image's, the other its aspect-ratio partner
        # rounded half up (a 1 x 1 image at aspect 0.5 keeps both: rows limit the height).
        if columns > rows * aspect:
            assert crop.height == rows and crop.width == max(1, np.floor(rows * aspect + 0.5))
        else:
            assert crop.width == columns and crop.height == max(1, np.floor(columns / aspect + 0.5))
    if fraction is not None and aspect is None:
        assert crop.width == max(1, np.floor(columns * fraction + 0.5))
        assert crop.height == max(1, np.floor(rows * fraction + 0.5))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(), "give fraction"),
        (dict(fraction=0.0), r"fraction must be in \(0, 1\]"),
        (dict(fraction=1.5), r"fraction must be in \(0, 1\]"),
        (dict(fraction=float("nan")), r"fraction must be in \(0, 1\]"),
        (dict(aspect=0.0), "aspect .* must be finite and > 0"),
        (dict(aspect=float("inf")), "aspect .* must be finite and > 0"),
    ],
)
def test_center_crop_refuses_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        center_crop(10, 10, **arguments)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        center_crop(0, 10, fraction=0.5)


# --- float32 pixels -----------------------------------------------------------------------


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize(
    "window", [None, (0.5, 1.0, False), (1500.0, 2000.0, False), (1500.0, 2000.0, True), (-20.0, 0.125, False)]
)
@pytest.mark.parametrize("rows, columns, height, width, resize", [(333, 517, 224, 224, "letterbox"), (31, 17, 100, 64, "stretch")])
def test_float32_pixels_match_reference(device, window, rows, columns, height, width, resize):
    rng = np.random.default_rng(rows)
    low, high = (0.0, 1.0) if window in (None, (0.5, 1.0, False)) else (-400.0, 3500.0)
    pixels = rng.uniform(low, high, (rows, columns)).astype(np.float32)
    spec = PreprocessSpec(height, width, resize, pad_value=0.1, mean=(0.5,), std=(0.25,), channels=3)
    _check_crop(pixels, None, 0, spec, None, device=device, window=window)


def test_float32_display_values_pass_through_the_default_window():
    rng = np.random.default_rng(31)
    display = rng.random((40, 40)).astype(np.float32)
    spec = PreprocessSpec(40, 40, "stretch")  # same size: a copy, no resampling
    out, _ = preprocess(display, None, 0, spec)
    np.testing.assert_array_equal(out[0, 0], display)
    out, _ = preprocess(display, FloatWindow(invert=True), 0, spec)
    np.testing.assert_array_equal(out[0, 0], 1.0 - display)


def test_float32_modality_values_window_like_the_stored_value_table():
    """Rescaled values windowed in the kernel give the table path's result for the same window."""
    rng = np.random.default_rng(32)
    stored = rng.integers(0, 4096, (257, 311)).astype(np.uint16)
    slope, intercept, center, width = 1.5, -100.0, 2600.0, 3400.0
    modality = (stored * slope + intercept).astype(np.float32)
    values = np.arange(4096) * slope + intercept
    table = np.clip((values - (center - width / 2)) / width, 0, 1).astype(np.float32)
    spec = PreprocessSpec(128, 128, "letterbox", mean=(0.5,), std=(0.25,))
    from_table, _ = preprocess(stored, table, 0, spec)
    from_window, _ = preprocess(modality, FloatWindow(center, width), 0, spec)
    np.testing.assert_allclose(from_window, from_table, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_a_value_error(bad):
    pixels = np.zeros((7, 9), np.float32)
    pixels[4, 6] = bad
    out = _out()
    with pytest.raises(ValueError, match=r"pixels must be finite; pixel \(row 4, column 6\) is"):
        preprocess_into(pixels, None, 0, out, 0, SPEC)
    assert (out == 0).all()
    with pytest.raises(ValueError, match="pixels must be finite"):
        preprocess_batch([(np.zeros((3, 3), np.float32), None, 0), (pixels, None, 0)], out, SPEC)


def test_float_and_table_must_go_with_the_right_pixels():
    with pytest.raises(ValueError, match="float32 pixels are mapped by the float window .* pass no lut"):
        preprocess_into(np.zeros((5, 6), np.float32), LUT, 0, _out(), 0, SPEC)
    with pytest.raises(ValueError, match="lut is None, but the pixels are uint16 stored values"):
        preprocess_into(GOOD_PIXELS, None, 0, _out(), 0, SPEC)
    with pytest.raises(ValueError, match="lut is None, but the pixels are uint16 stored values"):
        preprocess_into(GOOD_PIXELS, FloatWindow(), 0, _out(), 0, SPEC)
    with pytest.raises(TypeError, match="lut must be a numpy float32 table"):
        preprocess_into(GOOD_PIXELS, [0.0, 1.0], 0, _out(), 0, SPEC)


@pytest.mark.parametrize(
    "window, message",
    [
        (dict(width=0.0), "width must be > 0"),
        (dict(width=-2.0), "width must be > 0"),
        (dict(width=float("nan")), "must be finite"),
        (dict(center=float("inf")), "must be finite"),
    ],
)
def test_float_window_width_must_be_positive(window, message):
    with pytest.raises(ValueError, match=f"FloatWindow: .*{message}"):
        FloatWindow(**window)


@pytest.mark.parametrize(
    "window, message",
    [
        ((0.5, 0.0, False), r"float window's width must be > 0 .*got 0"),
        ((0.5, -1.0, False), r"float window's width must be > 0"),
        ((float("nan"), 1.0, False), "center and width must be finite"),
        ((0.0, 1e-60, False), "does not fit in float32"),
        ((1e300, 1.0, False), "does not fit in float32"),
    ],
)
def test_native_float_window_checks_itself(window, message):
    call = dict(height=8, width=8, channels=1, dtype="float32", resize="letterbox", pad_value=0.0, mean=[0.0], std=[1.0])
    with pytest.raises(ValueError, match=message):
        kernels().preprocess_cpu(np.zeros((5, 6), np.float32), None, 0, _out(), 0, float_window=window, **call)


# --- batches ------------------------------------------------------------------------------


def _mixed_images(rng: np.random.Generator) -> list[tuple]:
    """Images of different sizes, dtypes, tables, windows and crops."""
    return [
        (_pixels(rng, 700, 500, "uint16"), _lut(rng, 4096), 0),
        (_pixels(rng, 1, 1, "uint8"), _lut(rng, 256), 0),
        (_pixels(rng, 333, 901, "int16"), _lut(rng, 4096), -1024, (100, 30, 700, 250)),
        (rng.uniform(-100, 2000, (257, 129)).astype(np.float32), FloatWindow(900.0, 1800.0, invert=True), 0),
        (_pixels(rng, 64, 64, "uint8"), _lut(rng, 300), 20, Crop(0, 63, 64, 1)),
        (rng.random((90, 3)).astype(np.float32), None, 0),
    ]


@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_is_bitwise_the_per_image_calls(out_dtype, resize, threads):
    rng = np.random.default_rng(41)
    images = _mixed_images(rng)
    spec = PreprocessSpec(96, 128, resize, pad_value=0.25, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                          channels=3, dtype=out_dtype)
    batch = np.full((len(images) + 2, *spec.shape), np.nan, dtype=out_dtype)
    geometries = preprocess_batch(images, batch, spec, threads=threads)
    assert len(geometries) == len(images)
    bits = np.uint32 if out_dtype == "float32" else np.uint16
    for slot, image in enumerate(images):
        single = np.full((1, *spec.shape), np.nan, dtype=out_dtype)
        crop = image[3] if len(image) == 4 else None
        geometry = preprocess_into(image[0], image[1], image[2], single, 0, spec, threads=1, crop=crop)
        np.testing.assert_array_equal(batch[slot].view(bits), single[0].view(bits))
        assert geometries[slot] == geometry
    assert np.isnan(batch[len(images) :]).all()


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 25), st.integers(1, 25)), min_size=1, max_size=5),
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    resize=st.sampled_from(["stretch", "letterbox"]),
    dtype=st.sampled_from(["uint8", "uint16", "int16", "float32"]),
    threads=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_matches_reference_property(sizes, height, width, resize, dtype, threads, seed):
    rng = np.random.default_rng(seed)
    spec = PreprocessSpec(height, width, resize, pad_value=0.6, mean=(0.1,), std=(2.0,))
    images, expected = [], []
    for rows, columns in sizes:
        if dtype == "float32":
            pixels = rng.random((rows, columns)).astype(np.float32)
            images.append((pixels, None, 0))
            expected.append(reference.preprocess(pixels, None, 0, height, width, resize, 0.6, (0.1,), (2.0,)))
        else:
            pixels, lut = _pixels(rng, rows, columns, dtype), _lut(rng, 500)
            images.append((pixels, lut, _first_value(dtype)))
            expected.append(reference.preprocess(pixels, lut, _first_value(dtype), height, width, resize, 0.6,
                                                 (0.1,), (2.0,)))
    out = np.empty((len(images), *spec.shape), np.float32)
    preprocess_batch(images, out, spec, threads=threads)
    for slot in range(len(images)):
        np.testing.assert_allclose(out[slot].astype(np.float64), expected[slot], **_tolerance(spec))


def test_bad_batches_are_value_errors_naming_the_image():
    out = _out((2, 1, 8, 8))
    good = (GOOD_PIXELS, LUT, 0)
    with pytest.raises(ValueError, match="preprocess_batch: no images"):
        preprocess_batch([], out, SPEC)
    with pytest.raises(ValueError, match="3 images do not fit in out's batch of 2"):
        preprocess_batch([good, good, good], out, SPEC)
    with pytest.raises(ValueError, match=r"image 1: .*crop .* reaches outside"):
        preprocess_batch([good, (GOOD_PIXELS, LUT, 0, (0, 0, 7, 1))], out, SPEC)
    with pytest.raises(ValueError, match=r"image 1: lut must be a float32"):
        preprocess_batch([good, (GOOD_PIXELS, LUT.astype(np.float64), 0)], out, SPEC)
    with pytest.raises(ValueError, match=r"images\[0\] must be \(pixels, lut, lut_first_value\)"):
        preprocess_batch([(GOOD_PIXELS, LUT)], out, SPEC)
    with pytest.raises(ValueError, match="out must be"):
        preprocess_batch([good], _out((2, 3, 8, 8)), SPEC)
    assert (out == 0).all()


# --- CUDA: crops, float32 pixels, batches -------------------------------------------------


@pytest.mark.needs_cuda
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
def test_cuda_batch_matches_cpu(out_dtype):
    rng = np.random.default_rng(51)
    images = _mixed_images(rng)
    spec = PreprocessSpec(224, 160, "letterbox", pad_value=0.3, mean=(0.5,), std=(0.25,), dtype=out_dtype)
    gpu = np.full((len(images) + 1, *spec.shape), np.nan, dtype=out_dtype)
    cpu = np.full_like(gpu, np.nan)
    gpu_geometries = preprocess_batch(images, gpu, spec, device="cuda")
    cpu_geometries = preprocess_batch(images, cpu, spec, device="cpu")
    assert gpu_geometries == cpu_geometries
    assert np.isnan(gpu[-1]).all()
    tolerance = dict(rtol=0, atol=1e-5) if out_dtype == "float32" else dict(rtol=2.0**-10, atol=1e-5)
    np.testing.assert_allclose(gpu[:-1].astype(np.float32), cpu[:-1].astype(np.float32), **tolerance)


@pytest.mark.needs_cuda
def test_cuda_crop_and_float_match_cpu():
    rng = np.random.default_rng(52)
    pixels = _pixels(rng, 2500, 2048, "uint16")
    lut = _lut(rng, 4096)
    spec = PreprocessSpec(512, 512, "letterbox", channels=3)
    for crop in (center_crop(2500, 2048, fraction=0.8), center_crop(2500, 2048, aspect=1.0), (2047, 0, 1, 2500)):
        gpu, gpu_geometry = preprocess(pixels, lut, 0, spec, device="cuda", crop=crop)
        cpu, cpu_geometry = preprocess(pixels, lut, 0, spec, device="cpu", crop=crop)
        assert gpu_geometry == cpu_geometry
        np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-5)
    values = rng.uniform(-1000, 3000, (777, 555)).astype(np.float32)
    window = FloatWindow(800.0, 2500.0, invert=True)
    gpu, _ = preprocess(values, window, 0, spec, device="cuda", crop=(5, 6, 500, 700))
    cpu, _ = preprocess(values, window, 0, spec, device="cpu", crop=(5, 6, 500, 700))
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-5)
