"""The fused preprocess op against the numpy reference, against OpenCV, and against itself
across thread counts, output dtypes and devices."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.preprocess import PreprocessSpec, ResizeGeometry, preprocess, preprocess_into, resize_geometry

from . import reference

DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.needs_cuda)]


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
    assert geometry.as_dict() == reference.geometry(rows, columns, spec.height, spec.width, spec.resize)
    return out


@pytest.mark.parametrize("device", DEVICES)
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


@pytest.mark.parametrize("device", DEVICES)
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
                    assert got == reference.geometry(rows, columns, height, width, resize), (rows, columns, spec)


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
