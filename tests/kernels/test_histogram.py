"""The histogram op against the numpy reference, across dtypes, regions, padding, threads
and devices, and the inputs it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.ops.histogram import histogram
from radedge.io import PixelPadding

from ..helpers import cpu_and_cuda
from . import reference


def _fast_reference(pixels, first_value, bins, region=None, padding=None):
    """reference.histogram's rule with np.bincount, for images too big to count one by one."""
    if region is not None:
        x, y, width, height = region
        pixels = pixels[y : y + height, x : x + width]
    values = pixels.astype(np.int64).ravel()
    if padding is not None:
        values = values[(values < padding[0]) | (values > padding[1])]
    return np.bincount(np.clip(values - first_value, 0, bins - 1), minlength=bins).astype(np.int64)


def test_fast_reference_is_the_slow_one():
    rng = np.random.default_rng(1)
    pixels = rng.integers(-300, 300, (23, 17)).astype(np.int16)
    for args in ((-100, 150, None, None), (0, 1, (3, 4, 10, 9), (-5, 40)), (-400, 900, (0, 0, 17, 23), (7, 7))):
        np.testing.assert_array_equal(_fast_reference(pixels, *args), reference.histogram(pixels, *args))


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize(
    "dtype, low, high, first_value, bins",
    [
        ("uint8", 0, 256, 0, 256),
        ("uint8", 0, 256, 50, 100),  # values on both sides of the range land in the end bins
        ("uint16", 0, 4096, 0, 4096),  # 12 bits
        ("uint16", 0, 16384, 0, 16384),  # 14 bits
        ("uint16", 0, 65536, 0, 65536),  # 16 bits
        ("int16", -2048, 2048, -2048, 4096),
        ("int16", -32768, 32768, -32768, 65536),
        ("uint16", 0, 65536, 1000, 1),  # one bin holds everything
    ],
)
@pytest.mark.parametrize("region, padding", [(None, None), ((17, 2, 401, 299), None), (None, "some"),
                                             ((0, 300, 523, 1), "some")])
def test_matches_reference(device, dtype, low, high, first_value, bins, region, padding):
    rng = np.random.default_rng(bins + low)
    pixels = rng.integers(low, high, (301, 523)).astype(dtype)
    # A flat block like the area outside a collimator, then padding that covers it.
    pixels[:40, :100] = low + 3
    padding_range = (low + 3, low + 3 + (high - low) // 50) if padding else None
    counts = histogram(pixels, first_value, bins, region=region, padding=padding_range, threads=2, device=device)
    assert counts.dtype == np.int64 and counts.shape == (bins,)
    np.testing.assert_array_equal(counts, _fast_reference(pixels, first_value, bins, region, padding_range))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 30),
    columns=st.integers(1, 30),
    dtype=st.sampled_from(["uint8", "uint16", "int16"]),
    first_value=st.integers(-300, 300),
    bins=st.integers(1, 600),
    use_region=st.booleans(),
    use_padding=st.booleans(),
    threads=st.integers(1, 4),
    data=st.data(),
)
def test_matches_reference_property(rows, columns, dtype, first_value, bins, use_region, use_padding, threads, data):
    info = np.iinfo(dtype)
    low = max(int(info.min), first_value - 20)
    # Values around the range (all below or above it when it lies outside the dtype).
    high = max(low, min(int(info.max), first_value + bins + 20))
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    pixels = np.random.default_rng(seed).integers(low, high + 1, (rows, columns)).astype(dtype)
    region = None
    if use_region:
        x = data.draw(st.integers(0, columns - 1), label="x")
        y = data.draw(st.integers(0, rows - 1), label="y")
        region = (x, y, data.draw(st.integers(1, columns - x), label="width"), data.draw(st.integers(1, rows - y), label="height"))
    padding = None
    if use_padding:
        padding_low = data.draw(st.integers(low - 5, high + 5), label="padding low")
        padding = (padding_low, padding_low + data.draw(st.integers(0, 40), label="padding span"))
    counts = histogram(pixels, first_value, bins, region=region, padding=padding, threads=threads)
    np.testing.assert_array_equal(counts, reference.histogram(pixels, first_value, bins, region, padding))


def test_thread_count_does_not_change_the_counts():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4096, (1500, 1200)).astype(np.uint16)
    results = [histogram(pixels, 0, 4096, padding=(0, 10), threads=threads) for threads in (1, 2, 3, 8, 0)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert results[0].sum() == np.count_nonzero(pixels > 10)


def test_strided_rows_count_like_a_contiguous_copy():
    rng = np.random.default_rng(4)
    wide = rng.integers(-2048, 2048, (200, 300)).astype(np.int16)
    for view in (wide[:, 10:250], wide[::3, 5:70], wide[7:8]):
        assert not view.flags.c_contiguous or view.shape[0] == 1
        np.testing.assert_array_equal(histogram(view, -2048, 4096), histogram(np.ascontiguousarray(view), -2048, 4096))


def test_padding_with_the_pixel_padding_type():
    pixels = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint16)
    np.testing.assert_array_equal(histogram(pixels, 0, 8, padding=PixelPadding(6, 2)), [1, 1, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(histogram(pixels, 0, 8, padding=PixelPadding(3)), [1, 1, 1, 0, 1, 1, 1, 1])


# --- inputs the op refuses ---------------------------------------------------------------

PIXELS = np.zeros((5, 6), np.uint16)


@pytest.mark.parametrize(
    "pixels, bins, arguments, message",
    [
        (np.zeros((5, 6), np.float32), 10, {}, r"uint8, uint16, int16 \(stored values\).*got float32"),
        (np.zeros((5, 6), np.int32), 10, {}, "got int32"),
        (np.zeros((2, 3, 4), np.uint16), 10, {}, r"got uint16 with shape \(2, 3, 4\)"),
        (np.zeros((5, 6), np.uint16, order="F"), 10, {}, "contiguous columns"),
        (np.zeros((0, 6), np.uint16), 10, {}, "pixels is empty"),
        (PIXELS, 0, {}, "bins must be an integer from 1 to 65536"),
        (PIXELS, 65537, {}, "bins must be an integer from 1 to 65536"),
        (PIXELS, 10, dict(region=(0, 0, 7, 1)), r"region \(x=0, y=0, width=7, height=1\) reaches outside"),
        (PIXELS, 10, dict(region=(0, 0, 0, 1)), "region .* is empty"),
        (PIXELS, 10, dict(region=(-1, 0, 1, 1)), "region .* starts outside"),
        (PIXELS, 10, dict(region=(0, 0, 1)), r"region must be \(x, y, width, height\)"),
        (PIXELS, 10, dict(padding=(5, 4)), r"padding range is empty \(low 5 > high 4\)"),
        (PIXELS, 10, dict(padding=(1, 2, 3)), r"padding must be \(low, high\)"),
        (PIXELS, 10, dict(threads=-1), "threads must be >= 0"),
    ],
)
def test_bad_input_is_a_value_error(pixels, bins, arguments, message):
    with pytest.raises(ValueError, match=message):
        histogram(pixels, 0, bins, **arguments)


def test_native_op_checks_counts_and_first_value():
    good = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="counts must be an int64"):
        kernels().histogram_cpu(PIXELS, np.zeros(10, np.int32), 0)
    with pytest.raises(ValueError, match="counts must be contiguous"):
        kernels().histogram_cpu(PIXELS, np.zeros(20, np.int64)[::2], 0)
    read_only = good.copy()
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="counts is read-only"):
        kernels().histogram_cpu(PIXELS, read_only, 0)
    with pytest.raises(ValueError, match="counts must have 1 to 65536 bins"):
        kernels().histogram_cpu(PIXELS, np.zeros(0, np.int64), 0)
    with pytest.raises(ValueError, match="first_value must be a stored value in the int32 range"):
        kernels().histogram_cpu(PIXELS, good, 2**40)
    kernels().histogram_cpu(PIXELS, good, 0)
    assert good[0] == PIXELS.size


def test_unknown_device_is_refused():
    with pytest.raises(NativeOpError, match="histogram has no implementation for device 'tpu'"):
        histogram(PIXELS, 0, 10, device="tpu")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("bits", [8, 12, 14, 15, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_cuda_matches_cpu_across_shared_memory_sizes(bits, signed):
    """8-13 bits fit the default 48 KiB of shared memory, 14-15 need the opt-in size, 16 bits
    (256 KiB of bins) count straight into global memory: every path must agree with the CPU."""
    rng = np.random.default_rng(bits)
    first = -(1 << (bits - 1)) if signed else 0
    bins = 1 << bits
    pixels = rng.integers(first, first + bins, (2500, 2048)).astype(np.int16 if signed else np.uint16)
    pixels[:500] = first + 1  # a flat band: many atomics on one bin
    for region, padding in ((None, None), ((100, 200, 1500, 2000), (first, first + 1))):
        cpu = histogram(pixels, first, bins, region=region, padding=padding)
        gpu = histogram(pixels, first, bins, region=region, padding=padding, device="cuda")
        np.testing.assert_array_equal(gpu, cpu)
