"""Analytic line integrals of the body parts phantoms are built from.

Each part knows its shape in the patient plane (mm, x right, y down) and returns X-ray
path lengths or excess line integrals for a :class:`Grid`, restricted to the part's own
bounding box so that small parts cost little. Attenuation coefficients are effective
values (mm^-1) near the 45-55 keV mean energy of a filtered 60-90 kVp beam; bone is
expressed as its *excess* over the muscle it displaces, so a total line integral is
``soft tissue + sum(bone excess)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._primitives import Grid, Profile, chord_mm, ellipsoid_depth_mm, rotate, smoothstep

MU_FAT = 0.0190
MU_MUSCLE = 0.0225
MU_CORTEX_EXCESS = 0.055  # cortical bone (~1.9 g/cm^3) minus muscle
MU_MASS = 0.0260  # a tumour mass: cellular, haemorrhagic, partly mineralised matrix; denser than muscle


def grid_window(
    grid: Grid, x_min_mm: float, x_max_mm: float, y_min_mm: float, y_max_mm: float
) -> tuple[slice, slice] | None:
    """Rows/columns of ``grid`` whose centres fall in an mm rectangle; ``None`` when empty."""
    x = grid.x_mm[0]
    y = grid.y_mm[:, 0]
    c0, c1 = np.searchsorted(x, x_min_mm), np.searchsorted(x, x_max_mm, side="right")
    r0, r1 = np.searchsorted(y, y_min_mm), np.searchsorted(y, y_max_mm, side="right")
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(int(r0), int(r1)), slice(int(c0), int(c1))


def sub_grid(grid: Grid, window: tuple[slice, slice]) -> Grid:
    return Grid(grid.x_px[:, window[1]], grid.y_px[window[0], :], grid.mm_per_px)


def bone_end_outline(
    distance_mm: np.ndarray,
    *,
    cap_mm: float,
    cap_exponent: float,
    end_half_width_mm: float,
    shaft_half_width_mm: float,
    flare_mm: float,
    flare_power: float,
) -> np.ndarray:
    """Half-width (mm) of a long bone's outline at a distance from its articular surface.

    The end is a superellipse cap (``cap_exponent`` 2 = round like a humeral head, 4 =
    flat like a tibial plateau) of half-width ``end_half_width_mm``; below it the
    metaphysis narrows over ``flare_mm`` to the shaft with the funnel shape
    ``(1 - t)^p (1 + p t)``: it leaves the epiphysis with zero slope, turns concave after
    a short shoulder (about ``flare / p``) and meets the shaft tangentially.
    """
    s = np.asarray(distance_mm, dtype=np.float64)
    t = np.clip((s - cap_mm) / flare_mm, 0.0, 1.0)
    taper = (1.0 - t) ** flare_power * (1.0 + flare_power * t)
    half_width = shaft_half_width_mm + (end_half_width_mm - shaft_half_width_mm) * taper
    into_cap = np.clip((cap_mm - s) / cap_mm, 0.0, 1.0)
    cap = np.power(np.clip(1.0 - into_cap**cap_exponent, 0.0, 1.0), 1.0 / cap_exponent)
    return np.where(s < 0, 0.0, half_width * cap)


@dataclass(frozen=True)
class Notch:
    """The intercondylar notch of a distal femur: a lucent arch opening onto the joint.

    ``depth_mm`` is how far it reaches up from the articular surface, ``half_width_mm``
    its half-width at the surface; ``strength`` the fraction of bone it removes.
    """

    depth_mm: float
    half_width_mm: float
    strength: float


@dataclass(frozen=True)
class Physis:
    """The growth plate: an open (lucent, young patient) or closed (dense scar) wavy band."""

    distance_mm: float  # from the articular surface
    open: bool
    wave_amplitude_mm: float
    wave_length_mm: float
    phase: float
    width_mm: float


@dataclass(frozen=True)
class TubularBone:
    """A long bone as a generalised cylinder along ``axis`` from its articular end.

    ``s`` (mm) runs from the articular surface (``end_xy_mm``, s = 0) into the shaft;
    ``across`` is perpendicular. ``outer``/``inner`` give periosteal and endosteal
    half-widths R(s), r(s); the cross-section is an ellipse of width 2R and depth
    ``depth_ratio(s) * 2R``, so the cortical path is ``k (chord(R) - chord(r))`` and the
    medullary path ``k chord(r)``. ``medulla_excess`` (mm^-1) is the medulla's excess
    attenuation over muscle (trabecular bone fraction times mineralised bone excess).
    ``centre_offset(s)`` shifts the cross-section sideways (bowing, an offset head).
    All profiles are sampled on the same grid. The bone is longer than any image
    (``length_mm``), so its far end never shows.
    """

    name: str
    end_xy_mm: tuple[float, float]
    axis: tuple[float, float]
    length_mm: float
    outer: Profile
    inner: Profile
    depth_ratio: Profile
    medulla_excess: Profile
    centre_offset: Profile
    max_half_width_mm: float
    notch: Notch | None = None
    physis: Physis | None = None

    def point_mm(self, s_mm: float, across_mm: float) -> tuple[float, float]:
        """Patient-plane position (mm) of bone coordinates (s, across from the centre line)."""
        across_mm = across_mm + float(self.centre_offset(np.array([s_mm]))[0])
        ax, ay = self.axis
        return (self.end_xy_mm[0] + s_mm * ax - across_mm * ay, self.end_xy_mm[1] + s_mm * ay + across_mm * ax)

    def local(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """(s, v): distance along the axis and across from the (offset) centre line, mm."""
        s, across = rotate(grid.x_mm, grid.y_mm, self.end_xy_mm, self.axis)
        across -= self.centre_offset(s)
        return s, across

    def window(self, grid: Grid) -> tuple[slice, slice] | None:
        ex, ey = self.end_xy_mm
        fx, fy = ex + self.axis[0] * self.length_mm, ey + self.axis[1] * self.length_mm
        pad = self.max_half_width_mm + float(np.max(np.abs(self.centre_offset.values))) + 2.0
        return grid_window(grid, min(ex, fx) - pad, max(ex, fx) + pad, min(ey, fy) - pad, max(ey, fy) + pad)

    def excess(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Excess line integrals over muscle (float32, grid shape): (cortex, medulla)."""
        s, across = rotate(grid.x_mm, grid.y_mm, self.end_xy_mm, self.axis)
        # All profiles share one sampling grid: locate once, interpolate five times.
        located = self.outer.locate(s)
        v = across - self.centre_offset.at(*located)
        outer = self.outer.at(*located)
        inner = self.inner.at(*located)
        depth = self.depth_ratio.at(*located)
        outer_chord = chord_mm(outer, v)
        medulla = chord_mm(inner, v)
        medulla *= depth
        cortex = outer_chord * depth - medulla
        cortex *= np.float32(MU_CORTEX_EXCESS)
        medulla *= self.medulla_excess.at(*located)
        if self.notch is not None:
            arch = self.notch.half_width_mm * np.sqrt(np.clip(1.0 - s / self.notch.depth_mm, 0.0, 1.0))
            notch = (1.0 - smoothstep(arch - 1.5, arch + 1.5, np.abs(v))) * (arch > 0.5)
            keep = 1.0 - np.float32(self.notch.strength) * notch
            cortex *= keep
            medulla *= keep
        if self.physis is not None:
            p = self.physis
            wave = p.distance_mm + p.wave_amplitude_mm * np.sin(2 * np.pi * v / p.wave_length_mm + p.phase)
            band = np.exp(-np.square((s - wave) / p.width_mm)).astype(np.float32)
            if p.open:
                cortex *= 1.0 - 0.6 * band
                medulla *= 1.0 - 0.85 * band
            else:
                medulla += band * chord_mm(inner, v) * depth * np.float32(0.15 * MU_CORTEX_EXCESS)
        return cortex.astype(np.float32, copy=False), medulla.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Ellipsoid:
    """A bony ellipsoid (patella, glenoid, sesamoid...) with a cortical shell.

    In-plane semi-axes ``semi_axes_mm`` (along ``angle_rad``, across), ``half_depth_mm``
    along the beam; the shell is ``shell_mm`` thick; the inside has ``medulla_excess``.
    """

    centre_xy_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    angle_rad: float
    half_depth_mm: float
    shell_mm: float
    medulla_excess: float

    def window(self, grid: Grid) -> tuple[slice, slice] | None:
        r = max(self.semi_axes_mm) + 1.0
        cx, cy = self.centre_xy_mm
        return grid_window(grid, cx - r, cx + r, cy - r, cy + r)

    def path_mm(self, grid: Grid) -> np.ndarray:
        """Path length (mm) through the whole ellipsoid (float32, grid shape)."""
        axis = (float(np.cos(self.angle_rad)), float(np.sin(self.angle_rad)))
        u, v = rotate(grid.x_mm, grid.y_mm, self.centre_xy_mm, axis)
        a, b = self.semi_axes_mm
        return ellipsoid_depth_mm(np.sqrt(np.square(u / a) + np.square(v / b)), self.half_depth_mm).astype(np.float32)

    def excess(self, grid: Grid) -> np.ndarray:
        """Excess line integral over muscle (float32, grid shape)."""
        axis = (float(np.cos(self.angle_rad)), float(np.sin(self.angle_rad)))
        u, v = rotate(grid.x_mm, grid.y_mm, self.centre_xy_mm, axis)
        a, b = self.semi_axes_mm
        outer = ellipsoid_depth_mm(np.sqrt(np.square(u / a) + np.square(v / b)), self.half_depth_mm)
        shrink = self.shell_mm
        inner = ellipsoid_depth_mm(
            np.sqrt(np.square(u / (a - shrink)) + np.square(v / (b - shrink))), self.half_depth_mm - shrink
        )
        return ((outer - inner) * np.float32(MU_CORTEX_EXCESS) + inner * np.float32(self.medulla_excess)).astype(
            np.float32
        )


@dataclass(frozen=True)
class SoftTissueCylinder:
    """A limb or trunk: skin outline of half-width W(s) along ``axis``, fat layer of thickness F(s).

    The cross-section is an ellipse of depth ``depth_ratio * 2W``; the path through fat
    and muscle follows from the chords of the outer and the inner (muscle) ellipse.
    """

    origin_xy_mm: tuple[float, float]
    axis: tuple[float, float]
    half_width: Profile
    fat: Profile
    centre_offset: Profile
    depth_ratio: float

    def paths(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """(fat path, muscle path) in mm (float32, grid shape)."""
        s, across = rotate(grid.x_mm, grid.y_mm, self.origin_xy_mm, self.axis)
        v = across - self.centre_offset(s)
        width = self.half_width(s)
        outer = chord_mm(width, v) * np.float32(self.depth_ratio)
        muscle = chord_mm(np.maximum(width - self.fat(s), 0.0), v) * np.float32(self.depth_ratio)
        return (outer - muscle).astype(np.float32), muscle.astype(np.float32)
