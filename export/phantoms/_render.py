"""From a map of line integrals to stored values, with an exactly localised modification.

Shared by both phantom kinds: anatomy is rendered at half resolution (smooth fields),
upsampled, a lesion's attenuation is added at full resolution inside its bounding box,
then the pointwise acquisition chain runs once over the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._acquisition import Detector, Response, expose, quantise
from ._primitives import upsample
from ._protocol import Protocol


@dataclass(frozen=True)
class Modification:
    """A change of line integrals confined to a mask.

    ``delta`` (float32[h, w]) is added to the line integrals of the region starting at
    (``top``, ``left``); it is exactly zero wherever ``mask`` (bool[h, w]) is False.
    ``sign_hint`` (int8[h, w], -1/0/+1) is the direction the stored value should move
    (more attenuation = +1) where the change is too small to survive rounding.
    """

    top: int
    left: int
    delta: np.ndarray
    mask: np.ndarray

    @property
    def window(self) -> tuple[slice, slice]:
        h, w = self.mask.shape
        return slice(self.top, self.top + h), slice(self.left, self.left + w)


def render_stored(
    protocol: Protocol,
    line_integrals_half: np.ndarray,
    detector: Detector,
    response: Response,
    noise_rng: np.random.Generator,
    modification: Modification | None,
) -> np.ndarray:
    """Stored values (uint16[rows, columns], MONOCHROME2 sense, before any inversion).

    ``line_integrals_half`` (float32, half-resolution :class:`Grid.reduced` grid) holds
    anatomy + beam + collimator. The noise field is drawn from ``noise_rng`` whether or
    not there is a modification, so the same seed gives the same noise with and without
    a lesion. Inside the modification's mask, a pixel whose rounded value would not
    change (the change fell below one stored unit, e.g. on the curve's flat shoulder)
    is moved by one unit in the direction of the change, so the set of changed pixels is
    exactly the mask.
    """
    rows, columns = protocol.rows, protocol.columns
    line_integrals = upsample(line_integrals_half, rows, columns)
    noise = detector.noise(noise_rng, rows, columns)
    base_region = None
    if modification is not None:
        window = modification.window
        base_region = line_integrals[window].copy()
        line_integrals[window] += modification.delta
    values = expose(line_integrals, noise, detector, response)
    stored = quantise(values, protocol.max_stored)
    if modification is not None:
        window = modification.window
        base = quantise(expose(base_region, noise[window], detector, response), protocol.max_stored)
        region = stored[window]
        unchanged = modification.mask & (region == base)
        if unchanged.any():
            direction = np.where(modification.delta >= 0, 1, -1).astype(np.int32)
            moved = region.astype(np.int32) + direction
            # At the ends of the range the only way to differ is the other way.
            moved = np.where(moved > protocol.max_stored, region.astype(np.int32) - 1, moved)
            moved = np.where(moved < 0, region.astype(np.int32) + 1, moved)
            region[unchanged] = moved[unchanged].astype(np.uint16)
    return stored
