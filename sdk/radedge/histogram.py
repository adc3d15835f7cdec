"""The histogram op: how many pixels hold each stored value, over a table's range.

``histogram(pixels, first_value, bins)`` counts into int64 [bins]: bin ``b`` holds the
pixels whose stored value is ``first_value + b``; values below or above the range count
in the first or last bin (as the preprocess op's table lookup clamps them). ``region``
restricts the count to a rectangle (``(x, y, width, height)``, as a preprocess crop) and
``padding`` leaves out a range of stored values (DICOM pixel padding, PS3.3
C.7.5.1.1.2), which then count nowhere.

On ``"cpu"`` the rows are split across threads; on ``"cuda"`` blocks count into shared
memory histograms and add them up with atomics (``radedge._kernels.histogram_cuda_host``
copies the pixels to the GPU for that; the device op itself is enqueue-only).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._native import kernels, require_device
from .errors import NativeOpError
from .io.image import PixelPadding
from .preprocess import Device, _crop_argument


def histogram(
    pixels: np.ndarray,
    first_value: int,
    bins: int,
    *,
    region: Sequence[int] | None = None,
    padding: PixelPadding | tuple[int, int] | None = None,
    threads: int = 0,
    device: Device = "cpu",
) -> np.ndarray:
    """int64 [bins]: the count of each stored value ``first_value .. first_value + bins - 1``.

    ``pixels``: uint8 / uint16 / int16 [rows, columns] stored values (columns contiguous).
    ``bins``: 1 to 65536. ``region``: ``(x, y, width, height)`` in pixels, None for the
    whole image. ``padding``: a ``PixelPadding`` or ``(low, high)`` inclusive stored values
    not to count. ``threads``: CPU threads (0: the default); the counts do not depend on it.

    Raises ValueError for arrays or arguments the op cannot use (float pixels, a region
    outside the image, an empty padding range...), NativeOpError when ``device`` is not
    available or the CUDA op fails.
    """
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy array; got {type(pixels).__name__}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= 65536:
        raise ValueError(f"bins must be an integer from 1 to 65536; got {bins!r}")
    if isinstance(padding, PixelPadding):
        padding = (padding.low, padding.high)
    elif padding is not None:
        padding = tuple(int(v) for v in padding)
        if len(padding) != 2:
            raise ValueError(f"padding must be (low, high) stored values or a PixelPadding; got {padding!r}")
    region_argument = _crop_argument(region, "region")
    require_device("histogram", device)
    counts = np.zeros(int(bins), dtype=np.int64)
    if device == "cpu":
        kernels().histogram_cpu(pixels, counts, int(first_value), region=region_argument, padding=padding,
                                threads=int(threads))
    else:
        try:
            kernels().histogram_cuda_host(pixels, counts, int(first_value), region=region_argument, padding=padding)
        except RuntimeError as exc:
            raise NativeOpError(str(exc)) from exc
    return counts
