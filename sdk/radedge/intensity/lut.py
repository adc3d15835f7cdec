"""One lookup table from stored value to display intensity in [0, 1].

Every pointwise step between the integers in Pixel Data and the intensities a model was
trained on collapses into a table indexed by stored value (DESIGN.md, "Data flow"):

1. Modality LUT (PS3.3 C.11.1): Rescale Slope/Intercept (C.11.1.1.2), or the Modality
   LUT Sequence (C.11.1.1.1).
2. VOI LUT (PS3.3 C.11.2): the file's VOI LUT Sequence (C.11.2.1.1), else its Window
   Center/Width (C.11.2.1.2) with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID
   (C.11.2.1.3); or a caller's ``Window``; or a ``Percentile`` window read off the image's
   own histogram; or, with no VOI at all, the min-max of the modality output over the
   stored values present in the image.
3. Scaling to [0, 1] with the output range pydicom 3 uses (``apply_windowing``,
   ``apply_voi``): a window's output spans [y_min, y_max], which derive from Bits Stored,
   Pixel Representation, the Modality LUT descriptor and the rescale; mapping that span
   back onto [0, 1] leaves the window's own ramp, which is what is computed here. A VOI
   LUT's output spans [0, 2**bits - 1] of its descriptor.
4. MONOCHROME1 inversion (1 - x; PS3.3 C.7.6.3.1.2). pydicom never inverts; the
   Photometric Interpretation decides, not the Presentation LUT Shape (see
   ``radedge.io.dicom`` for how a contradiction is noted).
5. Pixel padding (PS3.3 C.7.5.1.1.2, ``Intensity.pixel_padding``): the stored values that
   mark pixels holding no image map to 0, "no signal", which displays black whatever the
   Photometric Interpretation (so after the inversion). Left to the window, padding
   outside the collimator would display as whatever its stored value means, e.g. white
   when it is 0 on a MONOCHROME1 image: a bright frame of nothing. Windows read off the
   image (percentile, min-max) never count padding pixels either. pydicom applies no padding rule, so on a padded
   image radedge and pydicom differ on the padding pixels, and there only.

The table covers every value representable in Bits Stored (at most 65536 entries) and
is built with vectorised numpy over ``np.arange`` of that range: about a millisecond for
16-bit data. The steps that look at the pixels are the percentile window, which counts
them with the native histogram op (``radedge.ops.histogram``; on the GPU with
``device="cuda"``), and the min-max fallback.

Where pydicom 3.0.2 and this module differ, on purpose:

- A VOI LUT input index past 255 (8-bit LUT entries) or 65535 wraps around in pydicom
  (it stores the index in the LUT's own dtype); here it clips to the last entry, as
  PS3.3 C.11.2.1.1 says inputs past the table do.
- A ``voi_index`` past the windows present raises ``InvalidWindowError``; pydicom applies
  its only window when Window Center has one value, whatever the index.

PNG/JPEG/TIFF images carry display values from the software that exported them: their
table is ``v / (2**bits - 1)``.

Header values that leave the table without meaning raise ``NotAnalysableError`` here, before
any of it is computed, and the pipeline then reports the image "not analysed" instead of
running a model on a table of NaN or of one grey (DESIGN.md, "Inputs it refuses, and how"):

- a Rescale Slope that is not finite, is 0 or is denormal (below 2.2e-308: no modality
  scale is that small, and any intercept or window centre added to 5e-324 * v swamps it,
  so every stored value lands on one number), or a Rescale Intercept that is not finite:
  the modality values would be NaN, or one value for the whole image;
- modality values that overflow float64 over the Bits Stored range (a slope near 1e308);
- a window (the file's, the caller's or a manifest's) whose width, or whose centre's distance
  from the middle of the modality values, exceeds ``ABSURD_WINDOW_RATIO`` times the span of
  modality values Bits Stored allows: such a window shows every pixel one grey. Windows
  that are not finite or too narrow stay ``InvalidWindowError`` (``check_window``), as the
  standard itself forbids them.

Whether the pixels present carry any contrast under a sound table (all padding, uniform) is
the pipeline's question (``radedge.pipeline.analysable``), as it depends on the pixels, not on
the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InvalidWindowError, NotAnalysableError
from ..io.image import Image, Intensity, LookupTable, Rescale
from ..spec.window import Percentile, Window, check_window
from ..ops import Device
from ..ops.histogram import histogram

__all__ = ["ABSURD_WINDOW_RATIO", "IntensityLut", "Percentile", "build_lut", "check_window", "percentile_window",
           "stored_value_histogram"]

_RASTER_FORMATS = ("png", "jpeg", "tiff")

#: A window wider than this many times the span of modality values the image can hold (or
#: centred further than this from their middle) maps every one of them to the same grey: its
#: ramp climbs by less than 1e-7 across them, about the step between float32 values near 0.5.
ABSURD_WINDOW_RATIO = 1e7


@dataclass(frozen=True, eq=False)
class IntensityLut:
    """A stored value -> display intensity table (PS3.3 C.11 chain, see module docstring).

    ``table``: float32 [n], read-only; ``table[i]`` is the display intensity in [0, 1]
    of stored value ``first_stored_value + i``. ``n`` covers the whole Bits Stored range,
    so every pixel of the image it was built for has an entry.
    ``description``: the chain in words, free of patient data, e.g.
    ``"Rescale 1*v+0 -> VOI window C=2048 W=4096 LINEAR (index 0) -> inverted
    (MONOCHROME1) -> [0,1]"``.
    """

    table: np.ndarray
    first_stored_value: int
    description: str

    def __post_init__(self) -> None:
        table = np.ascontiguousarray(self.table, dtype=np.float32)
        table.flags.writeable = False
        object.__setattr__(self, "table", table)

    @property
    def last_stored_value(self) -> int:
        """The largest stored value the table covers."""
        return self.first_stored_value + int(self.table.shape[0]) - 1

    def apply(self, stored_values: np.ndarray) -> np.ndarray:
        """Look up display intensities: float32, same shape as ``stored_values``.

        The plain numpy gather the native preprocess kernel must reproduce.
        """
        index = np.asarray(stored_values).astype(np.int64) - self.first_stored_value
        if index.size and (index.min() < 0 or index.max() >= self.table.shape[0]):
            raise ValueError(
                f"stored values must lie in [{self.first_stored_value}, {self.last_stored_value}], "
                f"the range this table covers; got [{index.min() + self.first_stored_value}, "
                f"{index.max() + self.first_stored_value}]"
            )
        return self.table[index]


def build_lut(
    image: Image,
    *,
    voi: Literal["file", "none"] | Window | Percentile = "file",
    voi_index: int = 0,
    region: tuple[int, int, int, int] | None = None,
    threads: int = 0,
    device: Device = "cpu",
) -> IntensityLut:
    """Build the stored value -> [0, 1] table for ``image``.

    ``voi``:
      - ``"file"``: the file's VOI LUT Sequence item ``voi_index`` if it has one (as
        pydicom's ``apply_voi_lut(prefer_lut=True)``), else its window ``voi_index``,
        else (no VOI in the file) the min-max of the modality output over the stored
        values present. For PNG/JPEG/TIFF: the display values as written, ``v / (2**bits
        - 1)``.
      - ``"none"``: ignore the file's VOI; min-max of the modality output over the
        stored values present.
      - a ``Window``: that window on the modality output (``voi_index`` is not used).
      - a ``Percentile``: the window from the ``low`` to the ``high`` percentile of the
        modality values of the image's pixels (``percentile_window``), counted by the
        native histogram op over ``region`` (``(x, y, width, height)``, e.g. the crop the
        model will see; None: the whole image) on ``device`` with ``threads`` CPU threads.

    Pixel padding (``image.intensity.pixel_padding``) maps to 0 in every table and is
    never counted by the percentile and min-max windows (module docstring, step 5).

    Raises ``InvalidWindowError`` (also a ValueError) for a window width the VOI LUT
    Function does not allow (< 1 for LINEAR, <= 0 otherwise; PS3.3 C.11.2.1.2.1,
    C.11.2.1.3), for a ``voi_index`` past what the image carries and for a percentile
    window of an image (region) with no pixel outside the padding; ``NotAnalysableError``
    for a rescale or window that leaves the table without meaning (module docstring);
    ValueError for a region outside the image.
    """
    if not (isinstance(voi, (Window, Percentile)) or voi in ("file", "none")):
        raise ValueError(f"voi must be 'file', 'none', a radedge.io.Window or a radedge.io.Percentile, not {voi!r}")
    intensity = image.intensity
    first, last = intensity.stored_value_range
    stored = np.arange(first, last + 1, dtype=np.int64)
    steps: list[str] = []

    if image.source.format in _RASTER_FORMATS and voi == "file":
        full_scale = (1 << intensity.bits_stored) - 1
        table = stored / full_scale
        steps.append(
            f"{image.source.format.upper()} display values as written by the exporting "
            f"software: v / {full_scale}"
        )
    else:
        modality = _modality_output(intensity, stored, steps)
        if isinstance(voi, Window):
            table = _window_ramp(modality, voi, "given by the caller")
            steps.append(_describe_window(voi, "given by the caller"))
        elif isinstance(voi, Percentile):
            counts = stored_value_histogram(image, region=region, threads=threads, device=device)
            table = _percentile(voi, counts, modality, intensity, region, steps)
        elif voi == "file" and intensity.voi_luts:
            lut = _pick(intensity.voi_luts, voi_index, intensity, "VOI LUT")
            table = _apply_lut(lut, modality) / ((1 << lut.bits) - 1)
            steps.append(
                f"VOI LUT Sequence item {voi_index} ({lut.data.size} entries from "
                f"{lut.first_mapped}, output / {(1 << lut.bits) - 1})"
            )
        elif voi == "file" and intensity.windows:
            window = _pick(intensity.windows, voi_index, intensity, "window")
            table = _window_ramp(modality, window, f"the file's window {voi_index}")
            steps.append(_describe_window(window, f"index {voi_index}"))
        else:
            why = "no VOI in the file" if voi == "file" else "VOI 'none' requested"
            table = _min_max(image, stored, modality, why, steps, threads, device)

    if intensity.photometric_interpretation == "MONOCHROME1":
        table = 1.0 - table
        steps.append("inverted (MONOCHROME1)")
    table = np.clip(table, 0.0, 1.0)
    padding = intensity.pixel_padding
    if padding is not None:
        low, high = max(padding.low, first), min(padding.high, last)
        if low <= high:
            table[low - first : high - first + 1] = 0.0
            which = f"stored value {low}" if low == high else f"stored values {low} to {high}"
            steps.append(f"pixel padding ({which}) -> 0, no signal")
    steps.append("[0,1]")
    return IntensityLut(
        table=table.astype(np.float32),
        first_stored_value=first,
        description=" -> ".join(steps),
    )


def stored_value_histogram(
    image: Image,
    *,
    region: tuple[int, int, int, int] | None = None,
    threads: int = 0,
    device: Device = "cpu",
) -> np.ndarray:
    """int64 [n]: how many pixels of ``image`` (in ``region``, None: all) hold each stored value.

    Bin ``i`` is stored value ``first + i`` over the image's whole Bits Stored range
    (``intensity.stored_value_range``), the range of the table ``build_lut`` makes. Pixel
    padding is not counted. Computed by the native histogram op on ``device``.
    """
    first, last = image.intensity.stored_value_range
    return histogram(image.pixels, first, last - first + 1, region=region, padding=image.intensity.pixel_padding,
                     threads=threads, device=device)


def percentile_window(counts: np.ndarray, values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """(value at ``low`` %, value at ``high`` %) of a population given as counts per value.

    ``counts`` (int [n]) says how many members have ``values[i]`` (float [n], any order,
    repeats allowed). The percentile is the nearest rank: the smallest value v such that
    at least p % of the members are <= v, i.e. the member of rank ``max(1, ceil(N * p /
    100))`` in ascending order, as ``numpy.percentile(..., method="inverted_cdf")``.
    Raises ValueError when ``counts`` sums to 0.
    """
    counts = np.asarray(counts)
    present = np.flatnonzero(counts)
    if present.size == 0:
        raise ValueError("percentile_window: no member to take a percentile of (every count is 0)")
    present_values = np.asarray(values, dtype=np.float64)[present]
    order = np.argsort(present_values, kind="stable")
    sorted_values = present_values[order]
    cumulative = np.cumsum(counts[present][order])
    total = int(cumulative[-1])

    def at(percent: float) -> float:
        # The same float64 steps as numpy: q = p / 100, then N * q.
        rank = max(1, math.ceil(total * (percent / 100.0)))
        return float(sorted_values[np.searchsorted(cumulative, rank, side="left")])

    return at(low), at(high)


def _percentile(voi: Percentile, counts: np.ndarray, modality: np.ndarray, intensity: Intensity,
                region, steps: list[str]) -> np.ndarray:
    where = "" if region is None else f" in region x={region[0]} y={region[1]} {region[2]}x{region[3]}"
    padding = " outside the pixel padding" if intensity.pixel_padding is not None else ""
    total = int(counts.sum())
    if total == 0:
        raise InvalidWindowError(
            f"percentile window {voi.low:g}%-{voi.high:g}%: no pixel{where} lies outside the pixel padding "
            f"(stored values {intensity.pixel_padding.low} to {intensity.pixel_padding.high}), so the image "
            "has nothing to take a percentile of. Use a fixed radedge.io.Window, or another region."
        )
    low, high = percentile_window(counts, modality, voi.low, voi.high)
    what = f"percentile window {voi.low:g}%-{voi.high:g}% (nearest rank) of {total} pixels{where}{padding}"
    if high > low:
        steps.append(f"{what}: modality [{low:g}, {high:g}], i.e. C={(low + high) / 2:g} W={high - low:g} "
                     "LINEAR_EXACT")
        return (modality - low) / (high - low)
    steps.append(f"{what}: both percentiles are modality value {low:g}; values up to it map to 0, above it to 1")
    return np.where(modality > low, 1.0, 0.0)


def _modality_output(intensity: Intensity, stored: np.ndarray, steps: list[str]) -> np.ndarray:
    """Modality values (float64) of every stored value, as pydicom's apply_modality_lut."""
    lut = intensity.modality_lut
    if lut is not None:
        steps.append(f"Modality LUT Sequence ({lut.data.size} entries from {lut.first_mapped}, "
                     f"{lut.bits} bits)")
        return _apply_lut(lut, stored).astype(np.float64)
    rescale = intensity.rescale
    if rescale is not None:
        _check_rescale(rescale)
        kind = f" ({rescale.rescale_type})" if rescale.rescale_type else ""
        steps.append(f"Rescale {rescale.slope:g}*v{rescale.intercept:+g}{kind}")
        # Same operations in the same order as pydicom, so the floats match bit for bit.
        with np.errstate(over="ignore", invalid="ignore"):
            modality = stored.astype(np.float64) * float(rescale.slope)
            modality += float(rescale.intercept)
        if not np.isfinite(modality).all():
            raise NotAnalysableError(
                f"Rescale Slope (0028,1053) {rescale.slope:g} and Intercept (0028,1052) {rescale.intercept:g} take "
                f"stored values {int(stored[0])} to {int(stored[-1])} beyond the largest number a float64 holds "
                "(about 1.8e308): modality values must be finite. The header is probably damaged; check the "
                "modality's rescale settings and send the image again."
            )
        return modality
    steps.append("stored values (no modality transform)")
    return stored.astype(np.float64)


def _check_rescale(rescale: Rescale) -> None:
    """``NotAnalysableError`` unless the slope is finite, non-zero and normal and the intercept finite."""
    slope, intercept = float(rescale.slope), float(rescale.intercept)
    what = None
    if not math.isfinite(slope):
        what = f"Rescale Slope (0028,1053) is {slope:g}, not a finite number"
    elif slope == 0:
        what = "Rescale Slope (0028,1053) is 0, which maps every stored value to the intercept"
    elif abs(slope) < np.finfo(np.float64).tiny:
        what = (f"Rescale Slope (0028,1053) is {slope:g}, a denormal number (below "
                f"{np.finfo(np.float64).tiny:.3g}) too small for any intercept or window to tell stored values apart")
    elif not math.isfinite(intercept):
        what = f"Rescale Intercept (0028,1052) is {intercept:g}, not a finite number"
    if what is not None:
        raise NotAnalysableError(
            f"{what}: stored values have no modality meaning, so no model can analyse the image. A slope must "
            "be a finite, non-zero number of normal size and the intercept finite. The header is probably damaged; "
            "check the modality's rescale settings and send the image again."
        )


def _apply_lut(lut: LookupTable, values: np.ndarray) -> np.ndarray:
    """PS3.3 C.11.1.1.1 / C.11.2.1.1: inputs below ``first_mapped`` take entry 0, inputs past
    the end the last entry; a fractional input (after a rescale) takes the entry of its
    integer part, as pydicom's integer cast does for the non-negative offsets involved.
    """
    entries = lut.data.size
    offset = np.floor(np.asarray(values, dtype=np.float64) - lut.first_mapped)
    index = np.clip(offset, 0, entries - 1).astype(np.int64)
    return lut.data[index].astype(np.float64)


def _pick(items: tuple, voi_index: int, intensity: Intensity, kind: str):
    if 0 <= voi_index < len(items):
        return items[voi_index]
    precedence = ""
    if kind == "VOI LUT" and intensity.windows:
        precedence = (
            f" VOI LUTs take precedence over the file's {len(intensity.windows)} window(s), as "
            "in pydicom's apply_voi_lut(prefer_lut=True); pass voi=image.intensity.windows[i] "
            "to use a window."
        )
    raise InvalidWindowError(
        f"voi_index {voi_index} asked for, but the image carries {len(items)} {kind}(s) "
        f"(indices 0 to {len(items) - 1}).{precedence}"
    )


def _window_ramp(values: np.ndarray, window: Window, which: str) -> np.ndarray:
    """Window Center/Width (PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.2 LINEAR_EXACT,
    C.11.2.1.3.1 SIGMOID) mapped onto [0, 1]. ``values``: the modality values of the whole
    Bits Stored range; ``which``: where the window came from, for the error.

    pydicom computes ``ramp * (y_max - y_min) + y_min``; dividing its [y_min, y_max] back
    out gives ``ramp``, which this returns directly (so a y range of either sign, e.g.
    from a negative Rescale Slope, needs no special case).
    """
    check_window(window)
    _check_window_scale(window, values, which)
    center, width = float(window.center), float(window.width)
    function = str(window.function).upper()
    if function == "LINEAR":
        center -= 0.5
        width -= 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if function == "SIGMOID":
            return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
        below = values <= center - width / 2
        above = values > center + width / 2
        # width is 0 only for LINEAR width 1, where no value lies strictly between.
        ramp = (values - center) / width + 0.5 if width > 0 else np.zeros_like(values)
        return np.where(below, 0.0, np.where(above, 1.0, ramp))


def _check_window_scale(window: Window, values: np.ndarray, which: str) -> None:
    """``NotAnalysableError`` for a window more than ``ABSURD_WINDOW_RATIO`` times wider than the
    span of ``values``, or centred further than that from their middle."""
    low, high = float(values.min()), float(values.max())
    span = high - low
    if span <= 0:
        # One modality value for every stored value: the pipeline's uniformity check says so.
        return
    limit = ABSURD_WINDOW_RATIO * span
    center, width = float(window.center), float(window.width)
    if width <= limit and abs(center - (low + high) / 2) <= limit:
        return
    raise NotAnalysableError(
        f"{which} (Window Center {center:g}, Width {width:g}) is out of all proportion to the modality values "
        f"this image can hold ({low:g} to {high:g}): it would show every pixel the same grey. A window's width, "
        f"and its centre's distance from the middle of those values, must stay within {ABSURD_WINDOW_RATIO:g} "
        "times their span. Check the modality's window settings, or give a window that fits the image."
    )


def _describe_window(window: Window, which: str) -> str:
    explanation = f", '{window.explanation}'" if window.explanation else ""
    return (f"VOI window C={float(window.center):g} W={float(window.width):g} "
            f"{window.function} ({which}{explanation})")


def _min_max(image: Image, stored: np.ndarray, modality: np.ndarray, why: str,
             steps: list[str], threads: int, device: Device) -> np.ndarray:
    """Map [min, max] of the modality values of the stored values present onto [0, 1].

    A rescale is monotonic, so the extreme stored values give the extreme modality
    values; a Modality LUT need not be, so every present value is looked at. With pixel
    padding, the values present are those the histogram op counts outside the padding.
    """
    first = int(stored[0])
    pixels = image.pixels
    if image.intensity.pixel_padding is not None and pixels.size:
        present = stored_value_histogram(image, threads=threads, device=device) > 0
        if not present.any():
            steps.append(f"{why}: every pixel is pixel padding; the table maps all to 0")
            return np.zeros_like(modality)
        low, high = float(modality[present].min()), float(modality[present].max())
        why += " (pixel padding not counted)"
    elif pixels.size == 0:
        low = high = float(modality[0])
    elif image.intensity.modality_lut is not None:
        present = np.zeros(stored.shape[0], dtype=bool)
        present[pixels.astype(np.int32, copy=False).ravel() - first] = True
        low, high = float(modality[present].min()), float(modality[present].max())
    else:
        ends = modality[[int(pixels.min()) - first, int(pixels.max()) - first]]
        low, high = float(ends.min()), float(ends.max())
    if high > low:
        steps.append(f"{why}: min-max of the modality output over the stored values present "
                     f"[{low:g}, {high:g}]")
        return (modality - low) / (high - low)
    steps.append(f"{why}: every stored value present has modality value {low:g}; values up to "
                 "it map to 0, above it to 1")
    return np.where(modality > low, 1.0, 0.0)
