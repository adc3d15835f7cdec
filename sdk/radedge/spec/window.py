"""VOI windows (PS3.3 C.11.2): the ones DICOM files carry, and the ones a manifest asks for.

Plain data shared by the reader (``radedge.io``), the manifest (``radedge.spec``) and the
lookup-table builder (``radedge.intensity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InvalidWindowError

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]


@dataclass(frozen=True)
class Window:
    """One VOI window (PS3.3 C.11.2.1.2 Window Center and Window Width)."""

    center: float
    width: float
    function: VoiFunction = "LINEAR"
    explanation: str = ""


def check_window(window: Window) -> None:
    """Raise ``InvalidWindowError`` (a ValueError) unless ``window`` can be applied (PS3.3
    C.11.2.1.2 and C.11.2.1.3): finite center and width, width >= 1 for LINEAR and > 0 for
    LINEAR_EXACT and SIGMOID."""
    center, width = float(window.center), float(window.width)
    function = str(window.function).upper()
    if not (np.isfinite(center) and np.isfinite(width)):
        raise InvalidWindowError(f"Window Center {center:g} / Width {width:g}: both must be finite numbers.")
    if function == "LINEAR":
        if width < 1:
            raise InvalidWindowError(
                f"Window Width {width:g} with VOI LUT Function LINEAR: PS3.3 C.11.2.1.2.1 "
                "requires a width of at least 1. Use another window from the file or pass "
                "radedge.io.Window(center, width) with width >= 1."
            )
    elif function in ("LINEAR_EXACT", "SIGMOID"):
        if width <= 0:
            raise InvalidWindowError(
                f"Window Width {width:g} with VOI LUT Function {function}: PS3.3 C.11.2.1.3 "
                "requires a width greater than 0. Use another window from the file or pass "
                "radedge.io.Window(center, width) with a positive width."
            )
    else:
        raise InvalidWindowError(
            f"VOI LUT Function {function!r} is not LINEAR, LINEAR_EXACT or SIGMOID (PS3.3 C.11.2.1.3)."
        )


@dataclass(frozen=True)
class Percentile:
    """A VOI window read off the image itself: its modality values at two percentiles.

    ``low`` and ``high`` are percentages, ``0 <= low < high <= 100``. Pixels are counted
    once per stored value (``radedge.intensity.stored_value_histogram``; pixel padding is
    never counted) and the percentile is the nearest rank: the smallest modality value v
    such that at least p % of the counted pixels have a modality value <= v (numpy's
    ``percentile(..., method="inverted_cdf")``). ``[low value, high value]`` then maps
    linearly onto [0, 1], as a LINEAR_EXACT window (PS3.3 C.11.2.1.3.2) with
    C = (low value + high value) / 2, W = high value - low value.
    """

    low: float = 0.5
    high: float = 99.5

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"Percentile.{name} must be a number (a percentage); got {value!r}")
            object.__setattr__(self, name, float(value))
        if not (np.isfinite(self.low) and np.isfinite(self.high) and 0.0 <= self.low < self.high <= 100.0):
            raise ValueError(
                f"Percentile needs 0 <= low < high <= 100 (percentages); got low={self.low:g}, high={self.high:g}"
            )
