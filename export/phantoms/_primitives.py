"""Small vectorised building blocks shared by the phantom renderers.

Everything here works on float32 numpy arrays and broadcasts: coordinates are usually a
column vector of y and a row vector of x so that 2-D fields are only materialised once.
Lengths are millimetres in the patient plane unless a name says ``_px``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def smoothstep(edge0: float | np.ndarray, edge1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hermite step: 0 below ``edge0``, 1 above ``edge1``, C1-continuous in between (float32)."""
    if np.isscalar(edge0) and np.isscalar(edge1):
        t = np.subtract(x, np.float32(edge0), dtype=np.float32)
        t *= np.float32(1.0 / (edge1 - edge0))
    else:
        t = ((x - edge0) / (edge1 - edge0)).astype(np.float32)
    np.maximum(t, 0.0, out=t)
    np.minimum(t, 1.0, out=t)
    # t * t * (3 - 2 t), in place
    shape = np.float32(3.0) - np.float32(2.0) * t
    t *= t
    t *= shape
    return t


def chord_mm(radius_mm: np.ndarray | float, offset_mm: np.ndarray) -> np.ndarray:
    """Length (mm) of the chord through a circle of ``radius_mm`` at distance ``offset_mm`` from its centre.

    This is the X-ray path length through a cylinder of circular cross-section seen side
    on; zero outside the circle.
    """
    return 2.0 * np.sqrt(np.maximum(np.square(radius_mm) - np.square(offset_mm), 0.0))


def ellipsoid_depth_mm(normalised_radius: np.ndarray, half_depth_mm: float | np.ndarray) -> np.ndarray:
    """Path length (mm) through an ellipsoid at a point whose normalised in-plane radius is given.

    ``normalised_radius`` is ``sqrt((du/a)^2 + (dv/b)^2)`` for the ellipsoid's in-plane
    semi-axes a, b; the third semi-axis (along the beam) is ``half_depth_mm``.
    """
    return 2.0 * half_depth_mm * np.sqrt(np.maximum(1.0 - np.square(normalised_radius), 0.0))


def band_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    fine_sigma_px: float,
    coarse_sigma_px: float,
    *,
    anisotropy: float = 1.0,
    vertical: bool = True,
) -> np.ndarray:
    """Zero-mean, unit-variance band-pass Gaussian noise (float32[rows, cols]).

    A difference of two Gaussian blurs of white noise keeps structures between
    ``fine_sigma_px`` and ``coarse_sigma_px``. ``anisotropy`` > 1 stretches the structures
    along the rows (``vertical``) or the columns, the look of trabeculae that follow the
    lines of stress in a bone.
    """
    white = rng.standard_normal(shape, dtype=np.float32)

    def blur(sigma: float) -> np.ndarray:
        along, across = sigma * anisotropy, sigma
        sigma_x, sigma_y = (across, along) if vertical else (along, across)
        return cv2.GaussianBlur(white, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT)

    field = blur(fine_sigma_px)
    if coarse_sigma_px > 0:
        field -= blur(coarse_sigma_px)
    field -= float(field.mean())
    std = float(field.std())
    if std > 0:
        field /= std
    return field


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], fine_sigma_px: float, coarse_sigma_px: float = 0.0
) -> np.ndarray:
    """:func:`band_noise` for structures much larger than a pixel, generated on a coarser grid.

    The noise is drawn at a resolution where ``fine_sigma_px`` is about 2 cells and
    upsampled bilinearly, which keeps large blurs cheap (float32[rows, cols], zero mean,
    unit variance).
    """
    factor = max(1, int(fine_sigma_px / 2.0))
    small = (max(2, -(-shape[0] // factor)), max(2, -(-shape[1] // factor)))
    field = band_noise(rng, small, fine_sigma_px / factor, coarse_sigma_px / factor)
    if factor == 1 and small == shape:
        return field
    return cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Profile:
    """A function of one coordinate sampled on a regular grid, evaluated by linear interpolation.

    ``values[i]`` is the value at ``start + i * step``; outside the sampled range the end
    values hold.
    """

    start: float
    step: float
    values: np.ndarray  # float32 [samples]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.at(*self.locate(x))

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index, fraction) of positions ``x``; reusable by profiles sampled on the same grid."""
        position = np.subtract(x, np.float32(self.start), dtype=np.float32)
        position *= np.float32(1.0 / self.step)
        np.clip(position, 0.0, len(self.values) - 1.001, out=position)
        index = position.astype(np.int32)
        position -= index
        return index, position

    def at(self, index: np.ndarray, fraction: np.ndarray) -> np.ndarray:
        """Linear interpolation at a :meth:`locate` result (float32)."""
        low = self.values[index]
        high = self.values[index + 1]
        high -= low
        high *= fraction
        high += low
        return high

    @classmethod
    def sample(cls, function, start: float, stop: float, step: float) -> "Profile":
        positions = np.arange(start, stop + step, step, dtype=np.float64)
        return cls(float(start), float(step), np.asarray(function(positions), dtype=np.float32))


@dataclass(frozen=True)
class Grid:
    """Pixel-centre coordinates of an image region, in full-resolution pixel units and in mm.

    ``x_px`` (float32[1, cols]) and ``y_px`` (float32[rows, 1]) are column/row positions of
    the region's pixel centres measured in pixels of the *full-resolution* image, so a
    half-resolution grid samples the same anatomy as the final image. ``mm_per_px`` is the
    patient-plane size of one full-resolution pixel.
    """

    x_px: np.ndarray
    y_px: np.ndarray
    mm_per_px: float

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.y_px.shape[0]), int(self.x_px.shape[1])

    @property
    def x_mm(self) -> np.ndarray:
        return self.x_px * np.float32(self.mm_per_px)

    @property
    def y_mm(self) -> np.ndarray:
        return self.y_px * np.float32(self.mm_per_px)

    @classmethod
    def full(
        cls,
        rows: int,
        cols: int,
        mm_per_px: float,
        top: int = 0,
        left: int = 0,
        height: int | None = None,
        width: int | None = None,
    ) -> "Grid":
        """The full-resolution pixels ``[top:top+height, left:left+width]``."""
        height = rows - top if height is None else height
        width = cols - left if width is None else width
        x = np.arange(left, left + width, dtype=np.float32)[None, :]
        y = np.arange(top, top + height, dtype=np.float32)[:, None]
        return cls(x, y, mm_per_px)

    @classmethod
    def reduced(cls, rows: int, cols: int, factor: int, mm_per_px: float) -> "Grid":
        """A grid ``factor`` times coarser whose samples sit where ``cv2.resize`` (INTER_LINEAR) expects them.

        Upsampling a field rendered on this grid to ``(rows, cols)`` with
        :func:`upsample` then lines up with the full-resolution pixel grid.
        """
        small_rows, small_cols = -(-rows // factor), -(-cols // factor)
        x = ((np.arange(small_cols, dtype=np.float64) + 0.5) * (cols / small_cols) - 0.5).astype(np.float32)
        y = ((np.arange(small_rows, dtype=np.float64) + 0.5) * (rows / small_rows) - 0.5).astype(np.float32)
        return cls(x[None, :], y[:, None], mm_per_px)


def upsample(field: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear upsampling of a :meth:`Grid.reduced` field to ``float32[rows, cols]``."""
    return cv2.resize(field, (cols, rows), interpolation=cv2.INTER_LINEAR)


def upsample_region(
    field: np.ndarray, rows: int, cols: int, top: int, left: int, height: int, width: int
) -> np.ndarray:
    """``upsample(field, rows, cols)[top:top+height, left:left+width]`` without upsampling everything."""
    small_rows, small_cols = field.shape
    x = ((np.arange(left, left + width, dtype=np.float64) + 0.5) * (small_cols / cols) - 0.5).astype(np.float32)
    y = ((np.arange(top, top + height, dtype=np.float64) + 0.5) * (small_rows / rows) - 0.5).astype(np.float32)
    map_x = np.broadcast_to(x[None, :], (height, width)).copy()
    map_y = np.broadcast_to(y[:, None], (height, width)).copy()
    return cv2.remap(field, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def rotate(
    x: np.ndarray, y: np.ndarray, origin: tuple[float, float], axis: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (``along``) and across (``across``) a unit ``axis`` through ``origin``.

    ``across`` is measured along ``(-axis_y, axis_x)``, the axis turned by +90 degrees in
    image coordinates (x right, y down).
    """
    dx = x - np.float32(origin[0])
    dy = y - np.float32(origin[1])
    ax, ay = np.float32(axis[0]), np.float32(axis[1])
    along = dx * ax + dy * ay
    across = -dx * ay + dy * ax
    return along, across
