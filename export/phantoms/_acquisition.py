"""The acquisition chain every phantom goes through: beam, collimator, detector, processing.

A phantom is first a map of X-ray line integrals ``A = sum(mu_i * path_i)`` (dimensionless,
float32[rows, cols]). This module turns it into stored values the way a digital
radiography system does:

1. Beam: relative fluence ``exp(-A)`` times the heel effect and off-axis fall-off.
2. Collimator: outside the (slightly rotated) field only scatter and leakage arrive.
3. Detector: quantum noise (Poisson, here its Gaussian limit, so variance = signal) plus
   electronic noise, slightly correlated by the scintillator's blur.
4. Processing: the vendor's dynamic-range compression (subtracting part of the local
   mean of the log image, so thick soft tissue and bone are both readable), then the
   log of the detected signal through a film-like characteristic curve
   (a logistic H&D curve: toe, straight part, shoulder) to stored values of
   ``bits_stored`` bits, higher = more attenuation (the MONOCHROME2 sense).

The dynamic-range compression is applied to the noise-free anatomy before any lesion
is added; everything after it is pointwise in ``A`` for a fixed noise field, so adding a
lesion's attenuation changes stored values only where the lesion is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._primitives import Grid, smoothstep

# Relative fluence below which the log is clamped: a handful of quanta at the lowest dose,
# far below anything the characteristic curve distinguishes from its shoulder.
_MIN_RELATIVE_SIGNAL = 1e-6


@dataclass(frozen=True)
class Collimation:
    """The open field of the collimator: a rectangle, possibly rotated, in full-resolution pixels.

    ``shutter_attenuation`` is the extra line integral outside the field (``-ln`` of the
    fraction of fluence that still arrives as scatter and leakage), highest far from the
    field edge. ``penumbra_px`` is the width of the blurred edge. ``electronic_fill``:
    the modality additionally overwrote the shuttered area with one constant value, as
    some systems do before sending a For Presentation image.
    """

    centre_px: tuple[float, float]
    half_size_px: tuple[float, float]
    angle_rad: float
    penumbra_px: float
    shutter_attenuation: float
    electronic_fill: bool

    def _local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cos, sin = np.float32(np.cos(self.angle_rad)), np.float32(np.sin(self.angle_rad))
        dx = x - np.float32(self.centre_px[0])
        dy = y - np.float32(self.centre_px[1])
        return dx * cos + dy * sin, -dx * sin + dy * cos

    def outside_distance_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance (px) to the field edge along the nearer axis: < 0 inside, > 0 outside."""
        u, v = self._local(x, y)
        return np.maximum(np.abs(u) - np.float32(self.half_size_px[0]), np.abs(v) - np.float32(self.half_size_px[1]))

    def attenuation(self, grid: Grid) -> np.ndarray:
        """Extra line integral (float32, grid shape) the collimator adds: 0 in the open field."""
        distance = self.outside_distance_px(grid.x_px, grid.y_px)
        closed = smoothstep(-0.5 * self.penumbra_px, 0.5 * self.penumbra_px, distance)
        # Scatter from the irradiated patient reaches a few centimetres under the blades,
        # so the shuttered area is brightest (least attenuated) next to the field.
        scatter_reach_px = 25.0 / grid.mm_per_px
        depth = 0.8 + 0.2 * smoothstep(0.0, scatter_reach_px, distance)
        return (closed * depth * np.float32(self.shutter_attenuation)).astype(np.float32, copy=False)

    def corners_px(self) -> np.ndarray:
        """float64[4, 2] x, y of the open field's corners."""
        cos, sin = np.cos(self.angle_rad), np.sin(self.angle_rad)
        hx, hy = self.half_size_px
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return np.stack(
            [
                self.centre_px[0] + local[:, 0] * cos - local[:, 1] * sin,
                self.centre_px[1] + local[:, 0] * sin + local[:, 1] * cos,
            ],
            axis=1,
        )

    def contains(self, points_xy_px: np.ndarray, margin_px: float) -> bool:
        """Whether every point (float[K, 2], x y) lies inside the field at least ``margin_px`` from its edge."""
        points = np.asarray(points_xy_px, dtype=np.float32)
        distance = self.outside_distance_px(points[:, 0], points[:, 1])
        return bool(np.all(distance <= -margin_px))

    def shuttered(self, rows: int, cols: int) -> np.ndarray:
        """bool[rows, cols]: pixels whose centre lies outside the open field."""
        grid = Grid.full(rows, cols, 1.0)
        return self.outside_distance_px(grid.x_px, grid.y_px) > 0


@dataclass(frozen=True)
class Detector:
    """Beam and detector: how much signal, how much noise and how it is shaped.

    ``quanta_reference`` is the mean number of detected quanta per pixel for the
    unattenuated beam at the image centre; the quantum noise variance equals the signal.
    ``electronic_noise_quanta`` is the standard deviation of the additive read-out noise
    in the same units. ``noise_blur_px`` is the scintillator's blur (Gaussian sigma) that
    correlates the noise between neighbouring pixels. ``heel_gradient`` is the relative
    change in fluence from one end of the anode-cathode axis to the other (the heel
    effect), along the rows when ``heel_along_rows``. ``falloff`` is the relative loss at
    the corners from the inverse-square law and the oblique incidence.
    """

    quanta_reference: float
    electronic_noise_quanta: float
    noise_blur_px: float
    heel_gradient: float
    heel_along_rows: bool
    falloff: float

    def beam_attenuation(self, grid: Grid, rows: int, cols: int) -> np.ndarray:
        """``-ln`` of the relative fluence from heel effect and fall-off (float32, grid shape)."""
        yn = grid.y_px / np.float32(rows - 1) - 0.5
        xn = grid.x_px / np.float32(cols - 1) - 0.5
        along = yn if self.heel_along_rows else xn
        heel = 1.0 + np.float32(self.heel_gradient) * along
        radial = 1.0 - np.float32(self.falloff) * 2.0 * (np.square(xn) + np.square(yn))
        return (-np.log(heel * radial)).astype(np.float32)

    def noise(self, rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
        """Unit-variance detector noise field (float32[rows, cols]), spatially correlated."""
        field = rng.standard_normal((rows, cols), dtype=np.float32)
        if self.noise_blur_px > 0:
            kernel = cv2.getGaussianKernel(5, self.noise_blur_px).astype(np.float64)
            # A separable blur scales the variance by (sum k^2)^2; undo it so the noise
            # figures stay those of the detector.
            gain = 1.0 / float(np.sum(kernel**2))
            field = cv2.sepFilter2D(field, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)
            field *= np.float32(gain)
        return field


@dataclass(frozen=True)
class Response:
    """Film-like characteristic curve: log exposure -> stored value (MONOCHROME2 sense).

    ``density`` is ``-ln(relative detected signal)``; the stored value is
    ``low + (high - low) * logistic((density - density_mid) / density_scale)``, rounded.
    ``max_stored`` is ``2**bits_stored - 1``.
    """

    density_mid: float
    density_scale: float
    stored_low: float
    stored_high: float
    max_stored: int

    def __call__(self, density: np.ndarray) -> np.ndarray:
        return np.float32(self.stored_low) + np.float32(self.stored_high - self.stored_low) / (
            1.0 + np.exp(-(density - np.float32(self.density_mid)) / np.float32(self.density_scale))
        )


def equalise(density: np.ndarray, weight: np.ndarray, sigma_px: float, strength: float) -> np.ndarray:
    """Dynamic-range compression of a log image (float32, same shape as ``density``).

    Subtracts ``strength`` times the local mean (Gaussian, ``sigma_px``) of ``density``
    over the pixels where ``weight`` (bool) is set, relative to the weighted global
    mean, as DR processing (multi-scale / unsharp-mask equalisation) does. Pixels outside
    ``weight`` (the shuttered area) do not pull on their neighbours.
    """
    factor = max(1, int(sigma_px / 4.0))
    size = (max(2, density.shape[1] // factor), max(2, density.shape[0] // factor))
    w = weight.astype(np.float32)
    small_w = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
    small_d = cv2.resize(density * w, size, interpolation=cv2.INTER_AREA)
    blur_w = cv2.GaussianBlur(small_w, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    blur_d = cv2.GaussianBlur(small_d, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    local = blur_d / np.maximum(blur_w, 1e-3)
    local = cv2.resize(local, (density.shape[1], density.shape[0]), interpolation=cv2.INTER_LINEAR)
    reference = float(density[weight].mean()) if weight.any() else 0.0
    return density - np.float32(strength) * (local - np.float32(reference))


def expose(attenuation: np.ndarray, noise: np.ndarray, detector: Detector, response: Response) -> np.ndarray:
    """Stored values (float32, same shape) before rounding, for total line integrals ``attenuation``.

    ``attenuation`` (float32) already includes the beam and collimator terms; ``noise``
    (float32, same shape) is the unit-variance field from :meth:`Detector.noise`. Both
    are left untouched. Pointwise: the output at a pixel depends on that pixel only.
    """
    signal = np.exp(-attenuation)
    # Gaussian limit of Poisson counting plus read-out noise, in units of the reference
    # fluence: variance = signal / N0 + (sigma_e / N0)^2.
    sigma = signal / np.float32(detector.quanta_reference)
    sigma += np.float32((detector.electronic_noise_quanta / detector.quanta_reference) ** 2)
    np.sqrt(sigma, out=sigma)
    sigma *= noise
    signal += sigma
    np.maximum(signal, np.float32(_MIN_RELATIVE_SIGNAL), out=signal)
    np.log(signal, out=signal)  # = -density
    signal += np.float32(response.density_mid)
    signal *= np.float32(1.0 / response.density_scale)
    np.exp(signal, out=signal)  # = exp(-(density - mid) / scale)
    signal += 1.0
    np.reciprocal(signal, out=signal)
    signal *= np.float32(response.stored_high - response.stored_low)
    signal += np.float32(response.stored_low)
    return signal


def quantise(values: np.ndarray, max_stored: int) -> np.ndarray:
    """Round half up and clip to ``[0, max_stored]``: uint16, same shape.

    Rounding half up (not half to even) keeps the map monotone with unit steps, so two
    values at least 1 apart never round to the same integer.
    """
    out = np.floor(values + np.float32(0.5))
    np.clip(out, 0, max_stored, out=out)
    return out.astype(np.uint16)
