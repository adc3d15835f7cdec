"""``Image``: what radedge knows about one input image before any model sees it.

Pixels are kept as *stored values* (the integers in Pixel Data, or in a PNG/TIFF file);
every intensity step that turns them into what a model saw in training is described by
``Intensity`` and applied later as one lookup table (``radedge.intensity``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..spec.window import Window


@dataclass(frozen=True)
class LookupTable:
    """A DICOM LUT (PS3.3 C.11.1.1.1 LUT Descriptor + LUT Data).

    ``first_mapped`` is the stored (or modality) value mapped to ``data[0]``; inputs below
    it map to ``data[0]`` and inputs past the end to ``data[-1]``. ``bits`` is the third
    LUT Descriptor value as used (pydicom's corrections applied): outputs lie in
    [0, 2**bits - 1].
    """

    first_mapped: int
    bits: int
    data: np.ndarray  # uint8 / uint16 [entries]
    explanation: str = ""


@dataclass(frozen=True)
class PixelPadding:
    """Stored values that mark pixels holding no image (PS3.3 C.7.5.1.1.2).

    Pixel Padding Value (0028,0120) alone marks one stored value; with Pixel Padding Range
    Limit (0028,0121) every stored value from one to the other, inclusive, in either
    order. Both are stored values, before any modality transform. Typical use: the area
    outside the collimator, or outside a CT reconstruction circle.

    radedge never counts padding pixels when it reads a window off the image (percentile
    or min-max VOI), and every table ``radedge.intensity.build_lut`` builds maps padding to
    0, the display value for "no signal" (black, after any MONOCHROME1 inversion).
    """

    value: int
    range_limit: int | None = None

    @property
    def low(self) -> int:
        """The smallest stored value that is padding."""
        return self.value if self.range_limit is None else min(self.value, self.range_limit)

    @property
    def high(self) -> int:
        """The largest stored value that is padding."""
        return self.value if self.range_limit is None else max(self.value, self.range_limit)

    def mask(self, stored_values: np.ndarray) -> np.ndarray:
        """bool, the shape of ``stored_values``: True where a value is padding."""
        stored_values = np.asarray(stored_values)
        return (stored_values >= self.low) & (stored_values <= self.high)


@dataclass(frozen=True)
class Rescale:
    """Rescale Slope / Intercept (PS3.3 C.11.1.1.2): modality value = slope * stored + intercept."""

    slope: float = 1.0
    intercept: float = 0.0
    rescale_type: str = ""


@dataclass(frozen=True)
class Intensity:
    """How stored values become displayed intensities, from the header (nothing applied yet).

    ``meaning`` is one sentence for a reader: where the numbers came from and what they
    are (for PNG/JPEG/TIFF input it states that they are already display values).
    """

    bits_allocated: int
    bits_stored: int
    signed: bool  # PixelRepresentation == 1 (two's complement stored values)
    photometric_interpretation: Literal["MONOCHROME1", "MONOCHROME2"]
    rescale: Rescale | None = None  # absent when a Modality LUT Sequence is used instead
    modality_lut: LookupTable | None = None
    windows: tuple[Window, ...] = ()
    voi_luts: tuple[LookupTable, ...] = ()
    presentation_lut_shape: str | None = None  # "IDENTITY" / "INVERSE" when present
    meaning: str = ""
    pixel_padding: PixelPadding | None = None  # Pixel Padding Value / Range Limit, when present

    @property
    def stored_value_range(self) -> tuple[int, int]:
        """Smallest and largest value representable in ``bits_stored`` bits (inclusive)."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1


@dataclass(frozen=True)
class PixelSpacing:
    """Physical size of one pixel, and where that figure came from.

    ``row_mm`` is the distance between the centres of adjacent rows, ``column_mm`` between
    adjacent columns (the DICOM order of Pixel Spacing). ``source`` names the attribute(s)
    used, e.g. ``"PixelSpacing"``, ``"ImagerPixelSpacing"`` or
    ``"ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"``; ``note`` says
    what plane the figure refers to (detector, patient) in words.
    """

    row_mm: float
    column_mm: float
    source: str
    note: str = ""


#: The pixel spacings (mm) radedge gives mm figures for. No X-ray detector resolves less than
#: a micrometre, and a pixel a metre wide holds no anatomy; a figure outside comes from a
#: damaged header (or a magnification factor near 0), and mm² measured with it would be
#: meaningless, or overflow to infinity.
USABLE_SPACING_MM = (1e-3, 1e3)


def unusable_spacing(spacing: PixelSpacing) -> str | None:
    """Why ``spacing`` gives no trustworthy mm figures, or None when it does: both values
    finite and within ``USABLE_SPACING_MM``."""
    low, high = USABLE_SPACING_MM
    values = (float(spacing.row_mm), float(spacing.column_mm))
    if all(math.isfinite(value) and low <= value <= high for value in values):
        return None
    return (
        f"{spacing.source} gives {values[0]:g} x {values[1]:g} mm per pixel, where a pixel spacing must be "
        f"finite and between {low:g} and {high:g} mm; no mm figures are given. Check the spacing (and any "
        "magnification factor) the modality writes"
    )


@dataclass(frozen=True)
class Source:
    """Where the image came from; never holds patient names, IDs or dates."""

    path: str | None
    format: Literal["dicom", "png", "jpeg", "tiff", "array"]
    transfer_syntax_uid: str | None = None
    transfer_syntax_name: str | None = None
    sop_class_uid: str | None = None
    modality: str | None = None
    presentation_intent: str | None = None  # PresentationIntentType: "FOR PRESENTATION" / "FOR PROCESSING"
    body_part: str | None = None
    view_position: str | None = None


@dataclass(frozen=True)
class Image:
    """One single-channel image as stored, with what is needed to interpret it.

    ``pixels``: stored values, uint8 / uint16 / int16 [rows, columns], C-contiguous.
    ``spacing`` is ``None`` when the file gives no usable spacing; ``spacing_problem``
    then says why (missing, zero, malformed, out of ``USABLE_SPACING_MM``), so mm figures
    can be omitted with a reason. A ``spacing`` given out of that range is replaced by
    ``None`` and the problem here, whichever reader made the image.
    ``notes`` records anything surprising found while reading (an inconsistent
    Presentation LUT Shape, a High Bit that was tolerated, ...), free of patient data.
    ``header``: for a DICOM input, its data set without Pixel Data (a ``pydicom.Dataset``),
    which DICOM outputs reference and copy patient and study attributes from; None for
    PNG, JPEG and TIFF. It holds patient data: nothing radedge prints or logs reads it.
    """

    pixels: np.ndarray
    intensity: Intensity
    source: Source
    spacing: PixelSpacing | None = None
    spacing_problem: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    header: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = None if self.spacing is None else unusable_spacing(self.spacing)
        if problem is not None:
            object.__setattr__(self, "spacing", None)
            object.__setattr__(self, "spacing_problem", problem)

    @property
    def rows(self) -> int:
        """Image height in pixels (DICOM Rows)."""
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        """Image width in pixels (DICOM Columns)."""
        return int(self.pixels.shape[1])
