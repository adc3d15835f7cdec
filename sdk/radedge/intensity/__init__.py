"""One lookup table per image, from stored value to the [0, 1] intensity a model was trained on:
modality LUT, VOI window or LUT, percentile windows read off the image, MONOCHROME1 inversion
and pixel padding, collapsed into one table the preprocess op gathers through."""

from __future__ import annotations

from .lut import (
    ABSURD_WINDOW_RATIO,
    IntensityLut,
    Percentile,
    build_lut,
    check_window,
    percentile_window,
    stored_value_histogram,
)

__all__ = ["ABSURD_WINDOW_RATIO", "IntensityLut", "Percentile", "build_lut", "check_window", "percentile_window",
           "stored_value_histogram"]
