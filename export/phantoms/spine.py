"""Lateral radiographs of the lumbar spine with wedge compression fractures of known grade.

Vertebral bodies L1-L5 (with T12 above and S1 and the sacrum below) sit on a lordotic curve;
each body is a block with a cortical shell, endplates and vertically striated cancellous
bone, seen from the side (the beam passes through its lateral width). Pedicles,
laminae, spinous processes and facets are hinted behind the bodies; the iliac wings,
bowel gas and 25-35 cm of soft tissue overlie them. Some bodies are wedge-compressed:
the anterior height is reduced by the fraction that defines the Genant grade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._acquisition import equalise
from ._anatomy import MU_CORTEX_EXCESS, MU_FAT, MU_MUSCLE, Ellipsoid, SoftTissueCylinder, grid_window, sub_grid
from ._primitives import Grid, Profile, band_noise, rotate, smoothstep
from ._protocol import Protocol, calibrate, draw_protocol, streams, windows_for
from ._render import render_stored
from .phantom import Phantom

LUMBAR_LEVELS = ("L1", "L2", "L3", "L4", "L5")
# Genant semi-quantitative grades by height reduction: 1 = 20-25 %, 2 = 25-40 %, 3 = > 40 %.
GENANT_REDUCTION = {1: (0.20, 0.25), 2: (0.25, 0.40), 3: (0.40, 1.0)}
_DRAW_REDUCTION = {1: (0.205, 0.245), 2: (0.27, 0.38), 3: (0.42, 0.55)}
_FRACTURE_LEVEL_WEIGHTS = (0.35, 0.25, 0.18, 0.12, 0.10)
_REDUCTION = 2


def genant_grade(height_reduction: float) -> int:
    """Genant grade (0-3) of a vertebral height reduction (fraction of the reference height)."""
    for grade in (3, 2, 1):
        if height_reduction >= GENANT_REDUCTION[grade][0]:
            return grade
    return 0


@dataclass(frozen=True)
class VertebralBody:
    """One vertebral body in the sagittal plane (mm).

    ``centre_xy_mm`` is the middle of the posterior wall's height at the body's mid-depth;
    ``caudal`` the unit vector down the spine, ``anterior`` the unit vector towards the
    front. ``depth_mm`` is the antero-posterior depth, ``posterior_height_mm`` and
    ``anterior_height_mm`` the wall heights (a wedge fracture lowers the anterior
    superior corner), ``width_mm`` the lateral width the beam crosses.
    """

    name: str
    centre_xy_mm: tuple[float, float]
    caudal: tuple[float, float]
    anterior: tuple[float, float]
    depth_mm: float
    posterior_height_mm: float
    anterior_height_mm: float
    width_mm: float
    endplate_concavity_mm: float
    waist_mm: float
    shell_mm: float
    trabecular_excess: float
    impaction: float  # extra density under a collapsed endplate (0 = none)

    def point(self, along_anterior: float, along_caudal: float) -> tuple[float, float]:
        cx, cy = self.centre_xy_mm
        return (
            cx + along_anterior * self.anterior[0] + along_caudal * self.caudal[0],
            cy + along_anterior * self.anterior[1] + along_caudal * self.caudal[1],
        )

    def corners_mm(self) -> dict[str, tuple[float, float]]:
        half_depth, half_height = self.depth_mm / 2, self.posterior_height_mm / 2
        drop = self.posterior_height_mm - self.anterior_height_mm
        return {
            "anterior_superior": self.point(half_depth, -half_height + drop),
            "posterior_superior": self.point(-half_depth, -half_height),
            "posterior_inferior": self.point(-half_depth, half_height),
            "anterior_inferior": self.point(half_depth, half_height),
        }

    @property
    def middle_height_mm(self) -> float:
        return 0.5 * (self.posterior_height_mm + self.anterior_height_mm) - 2.0 * self.endplate_concavity_mm

    def window(self, grid: Grid) -> tuple[slice, slice] | None:
        reach = 0.5 * np.hypot(self.depth_mm, self.posterior_height_mm) + 3.0
        cx, cy = self.centre_xy_mm
        return grid_window(grid, cx - reach, cx + reach, cy - reach, cy + reach)

    def excess(self, grid: Grid, texture: np.ndarray) -> np.ndarray:
        """Excess line integral over muscle (float32, grid shape); ``texture`` modulates the cancellous bone."""
        t, a = rotate(grid.x_mm, grid.y_mm, self.centre_xy_mm, self.caudal)
        # rotate() measures "across" along the caudal axis turned by +90 degrees; make it
        # point anteriorly whichever way the patient faces.
        turned = (-self.caudal[1], self.caudal[0])
        if turned[0] * self.anterior[0] + turned[1] * self.anterior[1] < 0:
            a = -a
        outer = self._path(t, a, 0.0)
        inner = self._path(t, a, self.shell_mm)
        out = (outer - inner) * np.float32(MU_CORTEX_EXCESS) + inner * np.float32(self.trabecular_excess) * texture
        if self.impaction > 0:
            # Trabecular impaction: a dense band under the collapsed superior endplate.
            superior = self._superior(a)
            band = smoothstep(0.0, 1.0, t - superior) * (1.0 - smoothstep(3.0, 6.0, t - superior))
            out += (
                inner
                * band
                * smoothstep(-0.3 * self.depth_mm, 0.2 * self.depth_mm, a)
                * np.float32(self.impaction * MU_CORTEX_EXCESS)
            )
        return out.astype(np.float32, copy=False)

    def _superior(self, a: np.ndarray) -> np.ndarray:
        """Superior endplate position (mm along ``caudal``) at anterior coordinate ``a``."""
        half_depth = 0.5 * self.depth_mm
        drop = self.posterior_height_mm - self.anterior_height_mm
        fraction = np.clip((a + half_depth) / self.depth_mm, 0.0, 1.0)
        concave = self.endplate_concavity_mm * (1.0 - np.square(np.clip(a / half_depth, -1.0, 1.0)))
        return -0.5 * self.posterior_height_mm + drop * fraction + concave

    def _path(self, t: np.ndarray, a: np.ndarray, shrink: float) -> np.ndarray:
        """Lateral path length (mm) through the body shrunk by ``shrink`` mm on every side."""
        half_depth = 0.5 * self.depth_mm - shrink
        superior = self._superior(a) + shrink
        concave = self.endplate_concavity_mm * (1.0 - np.square(np.clip(a / (0.5 * self.depth_mm), -1.0, 1.0)))
        inferior = 0.5 * self.posterior_height_mm - concave - shrink
        half_height = 0.5 * (self.posterior_height_mm + self.anterior_height_mm) / 2
        waist = self.waist_mm * (1.0 - np.square(np.clip(t / max(half_height, 1.0), -1.0, 1.0)))
        anterior_wall = half_depth - waist
        # Signed distance to a box with rounded corners (radius 2 mm), > 0 outside.
        radius = 2.0
        dx = np.maximum(-half_depth - a, a - anterior_wall) + radius
        dy = np.maximum(superior - t, t - inferior) + radius
        outside = np.sqrt(np.square(np.maximum(dx, 0.0)) + np.square(np.maximum(dy, 0.0)))
        distance = outside + np.minimum(np.maximum(dx, dy), 0.0) - radius
        inside = 1.0 - smoothstep(-0.35, 0.35, distance)
        # Kidney-shaped axial section: the lateral width shrinks towards the walls.
        relative = np.clip(a / (0.5 * self.depth_mm + 1.0), -1.0, 1.0)
        width = np.float32(self.width_mm - 2.0 * shrink) * np.sqrt(1.0 - np.square(relative))
        return inside * width


@dataclass(frozen=True)
class SpineScene:
    bodies: tuple[VertebralBody, ...]  # T12, L1..L5, S1 top to bottom
    parts: tuple[Ellipsoid, ...]  # posterior elements (cancellous texture)
    plates: tuple[Ellipsoid, ...]  # iliac wings and sacrum (no texture)
    gas: tuple[Ellipsoid, ...]  # bowel gas (negative excess)
    trunk: SoftTissueCylinder
    fractures: dict[str, int]  # level -> Genant grade
    reductions: dict[str, float]  # level -> anterior height reduction
    facing_left: bool  # anterior towards the image's left edge


def lumbar_spine_radiograph(
    seed: int,
    *,
    rows: int | None = None,
    columns: int | None = None,
    bits_stored: int | None = None,
    photometric: str | None = None,
    detected_quanta: float | None = None,
) -> Phantom:
    """A synthetic lateral lumbar spine radiograph with per-level ground truth.

    Args:
        seed: non-negative integer; the same seed always gives the same phantom.
        rows, columns: image size in pixels (drawn in 2400..3000 x 2000..2600 when ``None``).
        bits_stored: 8..16 (drawn when ``None``).
        photometric: "MONOCHROME1" or "MONOCHROME2" (drawn when ``None``).
        detected_quanta: detected quanta per pixel at mid-grey (drawn in 600..2500).

    Returns:
        A :class:`Phantom` with ``kind="lumbar_spine"`` and ``vertebrae``: five dicts,
        L1..L5 top to bottom, each with ``level``, ``centre_xy_px``, ``corners_xy_px``
        (anterior_superior, posterior_superior, posterior_inferior, anterior_inferior),
        ``heights_px`` and ``heights_mm`` (anterior, middle, posterior),
        ``anterior_height_ratio`` (anterior / posterior), ``fractured`` and
        ``genant_grade`` (0-3).
    """
    rng = streams(seed, "lumbar_spine")
    protocol = draw_protocol(
        rng["acquisition"],
        "lumbar_spine",
        seed,
        rows=rows,
        columns=columns,
        bits_stored=bits_stored,
        photometric=photometric,
        detected_quanta=detected_quanta,
    )
    scene = draw_spine(rng["anatomy"], protocol.rows * protocol.mm_per_px, protocol.columns * protocol.mm_per_px)
    grid = spine_grid(protocol)
    anatomy, bone = render_spine(scene, grid, rng["texture"])

    stored, windows, explanations = expose_spine(protocol, grid, anatomy, bone, rng["noise"])

    q = protocol.mm_per_px
    vertebrae = []
    for body_part in scene.bodies:
        if body_part.name not in LUMBAR_LEVELS:
            continue
        corners = {name: image_px(point, scene, protocol.columns, q) for name, point in body_part.corners_mm().items()}
        centre = np.mean(np.array(list(corners.values())), axis=0)
        heights_mm = {
            "anterior": body_part.anterior_height_mm,
            "middle": body_part.middle_height_mm,
            "posterior": body_part.posterior_height_mm,
        }
        grade = scene.fractures.get(body_part.name, 0)
        vertebrae.append(
            {
                "level": body_part.name,
                "centre_xy_px": [float(centre[0]), float(centre[1])],
                "corners_xy_px": {name: [float(x), float(y)] for name, (x, y) in corners.items()},
                "heights_px": {name: value / q for name, value in heights_mm.items()},
                "heights_mm": heights_mm,
                "anterior_height_ratio": body_part.anterior_height_mm / body_part.posterior_height_mm,
                "middle_height_ratio": body_part.middle_height_mm / body_part.posterior_height_mm,
                "fractured": grade > 0,
                "genant_grade": grade,
            }
        )
    header = dict(protocol.header)
    header.update(
        {
            "ViewPosition": "LL" if scene.facing_left else "RL",
            "ImageLaterality": "U",
            "PatientOrientation": ("P" if scene.facing_left else "A", "F"),
        }
    )
    if protocol.writes_pixel_spacing:
        header["PixelSpacing"] = (round(q, 6), round(q, 6))
    if protocol.writes_magnification:
        header["EstimatedRadiographicMagnificationFactor"] = round(protocol.magnification, 4)
    return Phantom(
        kind="lumbar_spine",
        seed=int(seed),
        stored=stored,
        bits_stored=protocol.bits_stored,
        photometric=protocol.photometric,
        imager_pixel_spacing_mm=(protocol.imager_pixel_spacing_mm, protocol.imager_pixel_spacing_mm),
        windows=windows,
        voi_function=protocol.voi_function,
        body_part="LSPINE",
        lesion_mask=None,
        label=None,
        lesion=None,
        vertebrae=vertebrae,
        window_explanations=explanations,
        magnification=protocol.magnification,
        dicom_header=header,
    )


def spine_grid(protocol: Protocol) -> Grid:
    """The reduced grid a spine is drawn on (``_REDUCTION`` source pixels per cell), which
    ``expose_spine`` expects."""
    return Grid.reduced(protocol.rows, protocol.columns, _REDUCTION, protocol.mm_per_px)


def expose_spine(
    protocol: Protocol, grid: Grid, anatomy: np.ndarray, bone: np.ndarray, noise_rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[float, float]], list[str]]:
    """A lateral spine's line integrals (``anatomy``, ``bone``: the body and its bone on the
    reduced ``grid``) exposed as ``protocol`` says: equalisation, collimation, detector
    response and noise -> (stored values, the windows, their explanations)."""
    open_field = protocol.collimation.outside_distance_px(grid.x_px, grid.y_px) < -protocol.collimation.penumbra_px
    line_integrals = equalise(
        anatomy + protocol.detector.beam_attenuation(grid, protocol.rows, protocol.columns),
        open_field,
        protocol.equalisation_sigma_mm / grid.mm_per_px / _REDUCTION,
        protocol.equalisation_strength,
    )
    line_integrals += protocol.collimation.attenuation(grid)
    body = (anatomy > 0.5) & open_field
    detector, response = calibrate(protocol, line_integrals[body])
    windows, explanations = windows_for(
        protocol, detector, response, line_integrals[body], line_integrals[bone & open_field]
    )
    stored = render_stored(protocol, line_integrals, detector, response, noise_rng, None)
    if protocol.collimation.electronic_fill:
        stored[protocol.collimation.shuttered(protocol.rows, protocol.columns)] = protocol.max_stored
    if protocol.photometric == "MONOCHROME1":
        stored = (protocol.max_stored - stored).astype(np.uint16)
    return stored, windows, explanations


def image_px(point_mm: tuple[float, float], scene: SpineScene, columns: int, mm_per_px: float) -> tuple[float, float]:
    """Canonical (anterior-left) mm -> image pixel coordinates, mirrored when the patient faces right."""
    x, y = point_mm[0] / mm_per_px, point_mm[1] / mm_per_px
    if not scene.facing_left:
        x = (columns - 1) - x
    return x, y


def draw_spine(rng: np.random.Generator, height_mm: float, width_mm: float) -> SpineScene:
    """Draw a lumbar spine scene in canonical orientation (anterior towards -x)."""
    size = float(rng.uniform(0.9, 1.1))
    # T12 to S1 spans about 260 mm; a smaller field shows a smaller patient rather than
    # crowding the levels.
    size = min(size, 0.92 * height_mm / 275.0)
    lordosis = np.deg2rad(rng.uniform(30.0, 55.0))
    bias = np.deg2rad(rng.uniform(-6.0, 6.0))
    facing_left = bool(rng.random() < 0.75)
    names = ("T12",) + LUMBAR_LEVELS + ("S1",)
    posterior_heights = np.array([24.0, 25.5, 26.5, 27.5, 27.5, 27.0, 28.0]) * size * rng.uniform(0.95, 1.05, 7)
    depths = np.array([30.0, 32.0, 33.5, 35.0, 36.0, 36.5, 40.0]) * size * rng.uniform(0.95, 1.05, 7)
    widths = np.array([40.0, 42.0, 45.0, 47.0, 49.0, 50.0, 55.0]) * size
    discs = np.array([7.0, 8.5, 9.5, 10.5, 11.0, 10.0]) * size * rng.uniform(0.75, 1.15, 6)

    # Fractures: which levels, which grade, how much anterior height is lost.
    roll = rng.random()
    count = 0 if roll < 0.4 else 1 if roll < 0.8 else 2 if roll < 0.95 else 3
    levels = rng.choice(LUMBAR_LEVELS, size=count, replace=False, p=_FRACTURE_LEVEL_WEIGHTS)
    fractures, reductions = {}, {}
    for level in levels:
        grade = int(rng.choice((1, 2, 3), p=(0.4, 0.35, 0.25)))
        fractures[str(level)] = grade
        reductions[str(level)] = float(rng.uniform(*_DRAW_REDUCTION[grade]))
    bone_density = float(rng.uniform(0.08, 0.2))  # cancellous bone volume fraction (osteoporotic .. normal)

    # Centre line: arc length from the T12 centre, tangent angle changing linearly
    # (lordosis); bodies are placed at their centres along it.
    spacing = [0.0]
    for i in range(len(names) - 1):
        spacing.append(spacing[-1] + 0.5 * posterior_heights[i] + discs[i] + 0.5 * posterior_heights[i + 1])
    spacing = np.array(spacing)
    lumbar_span = spacing[6] - spacing[1]
    curvature = lordosis / max(lumbar_span, 1.0)
    apex = spacing[1] + float(rng.uniform(0.55, 0.75)) * lumbar_span  # most anterior point near L3-L4
    angles = bias + curvature * (spacing - apex)
    # Sacrum: the S1 endplate tilts further (sacral slope 35-50 degrees).
    angles[6] = max(angles[6], np.deg2rad(rng.uniform(32.0, 45.0)))
    top_y = float(rng.uniform(0.02, 0.07)) * height_mm + 0.3 * posterior_heights[0]
    step = 0.5
    arc = np.arange(0.0, spacing[-1] + step, step)
    angle_along = np.interp(arc, spacing, angles)
    x_line = np.concatenate([[0.0], np.cumsum(np.sin(angle_along[:-1]) * step)])
    y_line = np.concatenate([[0.0], np.cumsum(np.cos(angle_along[:-1]) * step)])
    xs = np.interp(spacing, arc, x_line)
    ys = np.interp(spacing, arc, y_line)
    centre_x = width_mm * float(rng.uniform(0.46, 0.56))
    xs = xs - xs[1:6].mean() + centre_x
    ys = ys + top_y

    bodies = []
    for i, name in enumerate(names):
        caudal = (float(np.sin(angles[i])), float(np.cos(angles[i])))
        anterior = (-caudal[1], caudal[0])  # canonical: anterior towards -x
        if anterior[0] > 0:
            anterior = (caudal[1], -caudal[0])
        hp = float(posterior_heights[i])
        if name in reductions:
            ha = hp * (1.0 - reductions[name])
        elif name == "L5":
            ha = hp * float(rng.uniform(1.0, 1.08))
        else:
            ha = hp * float(rng.uniform(0.94, 1.02))
        bodies.append(
            VertebralBody(
                name=name,
                centre_xy_mm=(float(xs[i]), float(ys[i])),
                caudal=caudal,
                anterior=anterior,
                depth_mm=float(depths[i]),
                posterior_height_mm=hp,
                anterior_height_mm=ha,
                width_mm=float(widths[i]),
                endplate_concavity_mm=float(rng.uniform(0.3, 1.0)) + (0.5 if name in reductions else 0.0),
                waist_mm=float(rng.uniform(0.5, 1.5)),
                shell_mm=float(rng.uniform(0.8, 1.3)),
                trabecular_excess=bone_density * MU_CORTEX_EXCESS,
                impaction=float(rng.uniform(0.10, 0.22)) if name in reductions else 0.0,
            )
        )

    # Posterior elements, hinted: both pedicles (superimposed), the facet joints and the
    # spinous process of every level but the sacrum.
    parts: list[Ellipsoid] = []
    for body in bodies[:-1]:
        posterior = (-body.anterior[0], -body.anterior[1])
        half_depth = body.depth_mm / 2
        pedicle = body.point(-half_depth - 8.0, -0.18 * body.posterior_height_mm)
        parts.append(Ellipsoid(pedicle, (9.0 * size, 6.0 * size), _angle(posterior), 7.0, 1.2, 0.55 * MU_CORTEX_EXCESS))
        facet_up = body.point(-half_depth - 16.0, -0.5 * body.posterior_height_mm - 2.0)
        facet_down = body.point(-half_depth - 19.0, 0.5 * body.posterior_height_mm + 3.0)
        for facet in (facet_up, facet_down):
            parts.append(
                Ellipsoid(facet, (7.0 * size, 5.5 * size), _angle(body.caudal), 7.0, 1.0, 0.5 * MU_CORTEX_EXCESS)
            )
        spinous_dir = _normalised((posterior[0] + 0.3 * body.caudal[0], posterior[1] + 0.3 * body.caudal[1]))
        start = body.point(-half_depth - 20.0, 0.05 * body.posterior_height_mm)
        length = float(rng.uniform(30.0, 40.0)) * size
        centre = (start[0] + spinous_dir[0] * length / 2, start[1] + spinous_dir[1] * length / 2)
        parts.append(
            Ellipsoid(
                centre,
                (length / 2, float(rng.uniform(8.0, 11.0)) * size),
                _angle(spinous_dir),
                3.5,
                0.8,
                0.7 * MU_CORTEX_EXCESS,
            )
        )
    s1 = bodies[-1]
    # The rest of the sacrum continues behind and below S1.
    sacrum_centre = s1.point(-0.25 * s1.depth_mm, 0.5 * s1.posterior_height_mm + 38.0 * size)
    sacrum = Ellipsoid(sacrum_centre, (45.0 * size, 22.0 * size), _angle(s1.caudal), 18.0, 1.5, 0.08 * MU_CORTEX_EXCESS)
    iliac_wings = s1.point(-float(rng.uniform(0.0, 20.0)), -float(rng.uniform(0.0, 20.0)))
    iliac = Ellipsoid(
        iliac_wings,
        (float(rng.uniform(65.0, 80.0)), float(rng.uniform(50.0, 65.0))),
        float(np.deg2rad(rng.uniform(-20.0, 20.0))),
        6.0,
        1.5,
        0.10 * MU_CORTEX_EXCESS,
    )

    gas = []
    spine_x = float(np.mean(xs[1:6]))
    for _ in range(int(rng.integers(3, 10))):
        centre = (
            spine_x - float(rng.uniform(15.0, 150.0)),
            float(rng.uniform(0.15, 0.9)) * height_mm,
        )
        semi = (float(rng.uniform(6.0, 22.0)), float(rng.uniform(5.0, 16.0)))
        gas.append(Ellipsoid(centre, semi, float(rng.uniform(0, np.pi)), float(rng.uniform(8.0, 25.0)), 0.5, 0.0))

    back_skin = spine_x + float(rng.uniform(85.0, 120.0)) * size
    trunk_depth = float(rng.uniform(110.0, 150.0)) * size  # half AP depth
    trunk_centre = back_skin - trunk_depth
    lateral_ratio = float(rng.uniform(1.15, 1.45))
    fat = float(rng.uniform(15.0, 40.0))
    buttock = float(rng.uniform(10.0, 30.0))

    def trunk_half_depth(y):
        # The buttocks bulge posteriorly towards the bottom of the image.
        return trunk_depth + buttock * smoothstep(0.7 * height_mm, 1.0 * height_mm, y)

    trunk = SoftTissueCylinder(
        origin_xy_mm=(trunk_centre, 0.0),
        axis=(0.0, 1.0),
        half_width=Profile.sample(trunk_half_depth, -50.0, height_mm + 50.0, 1.0),
        fat=Profile.sample(lambda y: np.full_like(y, fat), -50.0, height_mm + 50.0, 1.0),
        centre_offset=Profile.sample(
            lambda y: np.zeros_like(y) - 0.5 * buttock * smoothstep(0.7 * height_mm, height_mm, y),
            -50.0,
            height_mm + 50.0,
            1.0,
        ),
        depth_ratio=lateral_ratio,
    )
    return SpineScene(
        bodies=tuple(bodies),
        parts=tuple(parts),
        plates=(iliac, sacrum),
        gas=tuple(gas),
        trunk=trunk,
        fractures=fractures,
        reductions=reductions,
        facing_left=facing_left,
    )


def _angle(direction: tuple[float, float]) -> float:
    return float(np.arctan2(direction[1], direction[0]))


def _normalised(vector: tuple[float, float]) -> tuple[float, float]:
    norm = float(np.hypot(*vector))
    return (vector[0] / norm, vector[1] / norm)


def render_spine(scene: SpineScene, grid: Grid, texture_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Total anatomy line integral (float32, reduced grid) and a bone mask (bool), in image orientation."""
    shape = grid.shape
    px_mm = grid.mm_per_px * _REDUCTION
    # Vertical trabeculae dominate a lumbar body seen from the side.
    texture = band_noise(texture_rng, shape, max(0.6 / px_mm, 0.8), 3.0 / px_mm, anisotropy=2.6)
    modulation = np.clip(1.0 + np.float32(0.35) * texture, 0.0, None)
    fat, muscle = scene.trunk.paths(grid)
    total = fat * np.float32(MU_FAT) + muscle * np.float32(MU_MUSCLE)
    bone = np.zeros(shape, dtype=np.float32)
    for body in scene.bodies:
        window = body.window(grid)
        if window is not None:
            bone[window] += body.excess(sub_grid(grid, window), modulation[window])
    for part in scene.parts:
        window = part.window(grid)
        if window is not None:
            bone[window] += part.excess(sub_grid(grid, window)) * modulation[window]
    for plate in scene.plates:
        window = plate.window(grid)
        if window is not None:
            bone[window] += plate.excess(sub_grid(grid, window))
    total += bone
    for bubble in scene.gas:
        window = bubble.window(grid)
        if window is not None:
            # Gas replaces soft tissue.
            total[window] -= bubble.path_mm(sub_grid(grid, window)) * np.float32(0.95 * MU_MUSCLE)
    np.maximum(total, 0.0, out=total)
    bone_mask = bone > 0.15
    if not scene.facing_left:
        total = np.ascontiguousarray(total[:, ::-1])
        bone_mask = np.ascontiguousarray(bone_mask[:, ::-1])
    return total, bone_mask
