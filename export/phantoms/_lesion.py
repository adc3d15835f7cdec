"""Bone lesions with the radiographic features that separate benign from malignant.

Benign (Lodwick IA-type, geographic): round/oval, sharp narrow zone of transition,
sclerotic rim, cortex thinned but intact, no periosteal reaction, typically 1-4 cm.
Malignant (Lodwick II-III, moth-eaten / permeative): irregular lobulated outline, wide
zone of transition, cortical destruction, soft-tissue mass, periosteal reaction
(Codman triangles; sunburst spicules when bone-forming, lamellated when lytic),
typically 5-11 cm. Either can be lytic (bone removed) or blastic (bone added);
malignant lesions are often mixed.

Everything is expressed as a change of line integrals in the coordinates of the host
bone (``s`` along the shaft from the articular surface, ``v`` across), rendered at full
resolution inside the lesion's bounding box and multiplied by the mask, so nothing
changes outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._anatomy import MU_CORTEX_EXCESS, MU_FAT, MU_MASS, MU_MUSCLE, TubularBone
from ._primitives import Grid, smooth_noise, smoothstep, upsample_region
from ._protocol import Protocol
from ._render import Modification
from .phantom import mask_extent

# Tissue a mass pushes aside inside a limb: a mix of fat and muscle.
_MU_DISPLACED = 0.5 * (MU_FAT + MU_MUSCLE)


@dataclass(frozen=True)
class LesionPlan:
    """The drawn parameters of one lesion (lengths in mm, in host-bone coordinates).

    ``along_mm``/``across_mm`` are the semi-axes of the bone lesion, ``lobes`` the
    (order, relative amplitude, phase) of its outline's harmonics, ``irregularity`` the
    amplitude of a random ragged margin. ``transition_start`` is the normalised radius
    where a malignant lesion's wide zone of transition begins; ``edge_mm`` the width
    of a benign lesion's sharp margin.
    """

    label: str
    matrix: str  # "lytic" | "blastic" | "mixed"
    pattern: str  # "geographic" | "moth-eaten" | "permeative"
    location: str  # "epiphysis" | "metaphysis" | "diaphysis"
    centre_s_mm: float
    centre_v_mm: float
    along_mm: float
    across_mm: float
    angle_rad: float
    lobes: tuple[tuple[int, float, float], ...]
    irregularity: float
    transition_start: float
    edge_mm: float
    lysis: float
    cortical_loss: float
    blastic_density: float
    rim_mm: float
    rim_attenuation: float
    septa: float
    hole_scale_mm: float
    mass_sides: tuple[int, ...] = ()
    mass_along_mm: float = 0.0
    mass_beyond_cortex_mm: float = 0.0
    mass_offset_s_mm: float = 0.0
    mass_ossification: float = 0.0
    codman_height_mm: float = 0.0
    codman_length_mm: float = 0.0
    spicule_count: int = 0
    spicule_attenuation: float = 0.0
    spicule_length_mm: float = 0.0
    lamella_count: int = 0
    lamella_spacing_mm: float = 0.0
    lamella_attenuation: float = 0.0
    mass_lobes: tuple[tuple[int, float, float], ...] = field(default_factory=tuple)
    shaft_start_mm: float = 0.0  # end of the epiphysis: no periosteal reaction beyond it

    @property
    def outline_factor(self) -> float:
        """Upper bound of how far the lobulated, ragged outline reaches beyond the ellipse."""
        return (1.0 + sum(amplitude for _, amplitude, _ in self.lobes)) * (1.0 + self.irregularity)

    @property
    def malignant(self) -> bool:
        return self.label == "malignant"


def draw_lesion(
    rng: np.random.Generator,
    label: str,
    bone: TubularBone,
    protocol: Protocol,
    benign_range_mm: tuple[float, float],
    malignant_range_mm: tuple[float, float],
    regions_mm: tuple[float, float],
) -> LesionPlan:
    """Draw a lesion of class ``label`` in ``bone`` that lies inside the collimated field.

    Sizes respect a floor of 3.5 % of the image's short side (diameter), so that the
    lesion is still several pixels across when the image is shrunk to ~256 px.
    ``regions_mm`` are the distances from the articular surface where the epiphysis
    ends and the diaphysis begins.
    """
    short_side_mm = min(protocol.rows, protocol.columns) * protocol.mm_per_px
    min_semi_axis = 0.0175 * short_side_mm
    draw, s_range = (_draw_benign, benign_range_mm) if label == "benign" else (_draw_malignant, malignant_range_mm)
    margin_px = 0.02 * min(protocol.rows, protocol.columns)
    # Each attempt draws a whole lesion at a new position; after many misses (a small or
    # tightly collimated image) the lesion is made smaller, down to the size floor.
    for attempt in range(72):
        size_factor = 1.0 if attempt < 24 else 0.85 if attempt < 40 else 0.7 if attempt < 56 else 0.55
        s_mm = float(rng.uniform(*s_range))
        plan = draw(
            np.random.default_rng(rng.integers(0, 2**63)), bone, s_mm, min_semi_axis, size_factor, regions_mm[0]
        )
        if _fits(plan, bone, protocol, margin_px):
            break
    else:
        raise ValueError(
            "no position in the field of view fits the lesion: the image is too small for a "
            "lesion of at least 3.5 % of its short side; use larger rows/columns"
        )
    epiphysis_end, diaphysis_start = regions_mm
    location = (
        "epiphysis"
        if plan.centre_s_mm < epiphysis_end
        else "metaphysis"
        if plan.centre_s_mm < diaphysis_start
        else "diaphysis"
    )
    return _replace(plan, location=location, shaft_start_mm=epiphysis_end)


def _replace(plan: LesionPlan, **changes) -> LesionPlan:
    values = {name: getattr(plan, name) for name in plan.__dataclass_fields__}
    values.update(changes)
    return LesionPlan(**values)


def _draw_benign(
    rng: np.random.Generator,
    bone: TubularBone,
    s_mm: float,
    min_semi_axis: float,
    size_factor: float,
    epiphysis_end_mm: float,
) -> LesionPlan:
    del epiphysis_end_mm  # benign lesions have no soft-tissue component to keep out of the joint
    matrix = "lytic" if rng.random() < 0.7 else "blastic"
    medulla = float(bone.inner(np.array([s_mm]))[0])
    across = float(np.clip(rng.uniform(0.45, 0.8) * medulla, 5.0, 16.0)) * size_factor
    across = max(across, min_semi_axis)
    along = float(np.clip(across * rng.uniform(1.1, 1.8), across, 28.0))
    room = max(medulla - across, 0.0)
    eccentric = rng.random() < 0.4
    side = float(rng.choice((-1.0, 1.0)))
    centre_v = side * room * float(rng.uniform(0.6, 1.0) if eccentric else rng.uniform(0.0, 0.4))
    lobes = tuple((int(k), float(rng.uniform(0.02, 0.06)), float(rng.uniform(0, 2 * np.pi))) for k in (2, 3))
    lytic = matrix == "lytic"
    return LesionPlan(
        label="benign",
        matrix=matrix,
        pattern="geographic",
        location="",
        centre_s_mm=s_mm,
        centre_v_mm=centre_v,
        along_mm=along,
        across_mm=across,
        angle_rad=float(np.deg2rad(rng.uniform(-10.0, 10.0))),
        lobes=lobes,
        irregularity=0.0,
        transition_start=1.0,
        edge_mm=float(rng.uniform(0.3, 0.6)),
        lysis=float(rng.uniform(0.8, 0.95)) if lytic else 0.0,
        cortical_loss=float(rng.uniform(0.15, 0.35)) if lytic else 0.0,
        blastic_density=0.0 if lytic else float(rng.uniform(0.30, 0.55)),
        rim_mm=float(rng.uniform(1.2, 2.5)) if lytic else 0.0,
        rim_attenuation=float(rng.uniform(0.4, 0.65)) if lytic else 0.0,
        septa=float(rng.uniform(0.08, 0.16)) if (lytic and rng.random() < 0.4) else 0.0,
        hole_scale_mm=float(rng.uniform(3.0, 5.0)),
    )


def _draw_malignant(
    rng: np.random.Generator,
    bone: TubularBone,
    s_mm: float,
    min_semi_axis: float,
    size_factor: float,
    epiphysis_end_mm: float,
) -> LesionPlan:
    roll = rng.random()
    matrix = "lytic" if roll < 0.35 else "blastic" if roll < 0.65 else "mixed"
    pattern = "moth-eaten" if rng.random() < 0.6 else "permeative"
    radius = float(bone.outer(np.array([s_mm]))[0])
    across = max(radius * float(rng.uniform(0.8, 1.2)), 1.5 * min_semi_axis)
    along = max(float(rng.uniform(25.0, 55.0)) * size_factor, 1.3 * across)
    side = int(rng.choice((-1, 1)))
    sides = (side, -side) if rng.random() < 0.3 else (side,)
    lobes = tuple(
        (int(k), float(rng.uniform(0.05, 0.12)), float(rng.uniform(0, 2 * np.pi)))
        for k in rng.choice(np.arange(3, 8), size=3, replace=False)
    )
    mass_lobes = tuple((int(k), float(rng.uniform(0.02, 0.05)), float(rng.uniform(0, 2 * np.pi))) for k in (2, 3))
    bone_forming = matrix in ("blastic", "mixed")
    lysis = float(rng.uniform(0.85, 1.0)) * (0.15 if matrix == "blastic" else 1.0)
    mass_along = along * float(rng.uniform(0.75, 1.05))
    mass_offset = along * float(rng.uniform(-0.2, 0.2))
    # Keep the mass on the bone's side of the joint: it may reach the epiphysis, not beyond.
    mass_start = s_mm + mass_offset - 1.2 * mass_along
    if mass_start < 0.5 * epiphysis_end_mm:
        shortfall = 0.5 * epiphysis_end_mm - mass_start
        mass_offset += 0.5 * shortfall
        mass_along -= 0.5 * shortfall / 1.2
    mass_along = max(mass_along, 0.5 * along)
    return LesionPlan(
        label="malignant",
        matrix=matrix,
        pattern=pattern,
        location="",
        centre_s_mm=s_mm,
        centre_v_mm=side * radius * float(rng.uniform(0.1, 0.4)),
        along_mm=along,
        across_mm=across,
        angle_rad=float(np.deg2rad(rng.uniform(-8.0, 8.0))),
        lobes=lobes,
        irregularity=float(rng.uniform(0.12, 0.2)),
        transition_start=float(rng.uniform(0.35, 0.55)),
        edge_mm=0.0,
        lysis=lysis,
        cortical_loss=float(rng.uniform(0.75, 0.95)),
        blastic_density={
            "lytic": 0.0,
            "blastic": float(rng.uniform(0.6, 1.0)),
            "mixed": float(rng.uniform(0.35, 0.55)),
        }[matrix],
        rim_mm=0.0,
        rim_attenuation=0.0,
        septa=0.0,
        hole_scale_mm=float(rng.uniform(2.0, 3.5) if pattern == "moth-eaten" else rng.uniform(0.9, 1.5)),
        mass_sides=sides,
        mass_along_mm=mass_along,
        mass_beyond_cortex_mm=float(rng.uniform(20.0, 40.0)) * size_factor,
        mass_offset_s_mm=mass_offset,
        mass_ossification={
            "lytic": 0.0,
            "blastic": float(rng.uniform(0.15, 0.35)),
            "mixed": float(rng.uniform(0.05, 0.2)),
        }[matrix],
        codman_height_mm=float(rng.uniform(3.0, 6.0)),
        codman_length_mm=float(rng.uniform(7.0, 14.0)),
        spicule_count=int(rng.integers(60, 110)) if bone_forming else 0,
        spicule_attenuation=float(rng.uniform(0.15, 0.3)) if bone_forming else 0.0,
        spicule_length_mm=float(rng.uniform(0.6, 0.95)) if bone_forming else 0.0,
        lamella_count=int(rng.integers(2, 5)) if not bone_forming else 0,
        lamella_spacing_mm=float(rng.uniform(1.2, 2.0)),
        lamella_attenuation=float(rng.uniform(0.08, 0.16)) if not bone_forming else 0.0,
        mass_lobes=mass_lobes,
    )


def _bounds_sv(plan: LesionPlan, bone: TubularBone) -> tuple[float, float, float, float]:
    """(s_min, s_max, v_min, v_max) in mm containing everything the lesion can touch."""
    reach = plan.outline_factor
    cos, sin = abs(np.cos(plan.angle_rad)), abs(np.sin(plan.angle_rad))
    half_s = (plan.along_mm * cos + plan.across_mm * sin) * reach + 3.0 * plan.rim_mm + plan.edge_mm + 1.0
    half_v = (plan.along_mm * sin + plan.across_mm * cos) * reach + 3.0 * plan.rim_mm + plan.edge_mm + 1.0
    s_min, s_max = plan.centre_s_mm - half_s, plan.centre_s_mm + half_s
    v_min, v_max = plan.centre_v_mm - half_v, plan.centre_v_mm + half_v
    if plan.mass_sides:
        radius = float(np.max(bone.outer(np.linspace(s_min, s_max, 64))))
        s_mass = plan.centre_s_mm + plan.mass_offset_s_mm
        mass_reach = plan.mass_along_mm * (1.0 + sum(a for _, a, _ in plan.mass_lobes) + 0.08)
        s_min = min(s_min, s_mass - mass_reach - plan.codman_length_mm - 4.0)
        s_max = max(s_max, s_mass + mass_reach + plan.codman_length_mm + 4.0)
        outer = radius + plan.mass_beyond_cortex_mm * (1.0 + sum(a for _, a, _ in plan.mass_lobes) + 0.08) + 2.0
        for side in plan.mass_sides:
            v_min, v_max = min(v_min, side * outer), max(v_max, side * outer)
        v_min, v_max = min(v_min, -radius - 1.0), max(v_max, radius + 1.0)
    return s_min, s_max, v_min, v_max


def _bounds_px(plan: LesionPlan, bone: TubularBone, mm_per_px: float) -> np.ndarray:
    """float64[K, 2]: x, y (px) of points whose bounding box contains the lesion."""
    s_min, s_max, v_min, v_max = _bounds_sv(plan, bone)
    points = [bone.point_mm(s, v) for s in np.linspace(s_min, s_max, 7) for v in (v_min, v_max)]
    return np.asarray(points) / mm_per_px


def _fits(plan: LesionPlan, bone: TubularBone, protocol: Protocol, margin_px: float) -> bool:
    points = _bounds_px(plan, bone, protocol.mm_per_px)
    inside_image = (
        points[:, 0].min() >= margin_px
        and points[:, 1].min() >= margin_px
        and points[:, 0].max() <= protocol.columns - 1 - margin_px
        and points[:, 1].max() <= protocol.rows - 1 - margin_px
    )
    return inside_image and protocol.collimation.contains(points, margin_px)


def _window(
    bone: TubularBone,
    s_range: tuple[float, float],
    v_range: tuple[float, float],
    mm_per_px: float,
    top: int,
    left: int,
    shape: tuple[int, int],
) -> tuple[slice, slice] | None:
    """Rows/columns of the lesion's box (``top``, ``left``, ``shape``) covering a rectangle in bone coordinates."""
    points = np.asarray([bone.point_mm(s, v) for s in np.linspace(*s_range, 5) for v in v_range]) / mm_per_px
    c0 = max(int(np.floor(points[:, 0].min())) - 2 - left, 0)
    r0 = max(int(np.floor(points[:, 1].min())) - 2 - top, 0)
    c1 = min(int(np.ceil(points[:, 0].max())) + 3 - left, shape[1])
    r1 = min(int(np.ceil(points[:, 1].max())) + 3 - top, shape[0])
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


def _normalised_radius(
    s: np.ndarray,
    v: np.ndarray,
    centre: tuple[float, float],
    semi_axes: tuple[float, float],
    angle_rad: float,
    lobes: tuple[tuple[int, float, float], ...],
) -> np.ndarray:
    """Elliptical radius (1 on the outline) of a lobulated ellipse: rho / (1 + sum a_k cos(k phi + p_k)).

    The harmonics are evaluated as powers of the unit complex number exp(i phi), which
    avoids an arctangent and a cosine per pixel and lobe.
    """
    cos, sin = np.float32(np.cos(angle_rad)), np.float32(np.sin(angle_rad))
    ds = s - np.float32(centre[0])
    dv = v - np.float32(centre[1])
    along = (ds * cos + dv * sin) * np.float32(1.0 / semi_axes[0])
    across = (dv * cos - ds * sin) * np.float32(1.0 / semi_axes[1])
    rho = np.sqrt(along * along + across * across)
    if not lobes:
        return rho
    unit = (along + 1j * across).astype(np.complex64)
    unit /= np.maximum(rho, np.float32(1e-6))
    outline = np.ones_like(rho)
    power = np.ones_like(unit)
    for order in range(1, max(order for order, _, _ in lobes) + 1):
        power *= unit
        for lobe_order, amplitude, phase in lobes:
            if lobe_order == order:
                outline += (
                    np.float32(amplitude * np.cos(phase)) * power.real
                    - np.float32(amplitude * np.sin(phase)) * power.imag
                )
    rho /= outline
    return rho


def render_lesion(plan: LesionPlan, bone: TubularBone, protocol: Protocol, maps, rng: np.random.Generator):
    """The lesion's change of line integrals and its mask, and its description.

    ``maps`` are the half-resolution anatomy maps (main bone cortex/medulla excess and
    soft-tissue path). Returns ``(Modification, info)``; ``info`` is the JSON-ready
    ``Phantom.lesion`` dictionary.
    """
    q = protocol.mm_per_px
    points = _bounds_px(plan, bone, q)
    left = max(int(np.floor(points[:, 0].min())) - 2, 0)
    top = max(int(np.floor(points[:, 1].min())) - 2, 0)
    right = min(int(np.ceil(points[:, 0].max())) + 3, protocol.columns)
    bottom = min(int(np.ceil(points[:, 1].max())) + 3, protocol.rows)
    height, width = bottom - top, right - left
    shape = (height, width)
    grid = Grid.full(protocol.rows, protocol.columns, q, top, left, height, width)
    s, v = bone.local(grid)
    radius = bone.outer(s)
    inside_bone = np.abs(v) < radius

    def region(field: np.ndarray) -> np.ndarray:
        return upsample_region(field, protocol.rows, protocol.columns, top, left, height, width)

    cortex = region(maps.main_cortex)
    medulla = region(maps.main_medulla)
    hole_px = plan.hole_scale_mm / q
    fine = smooth_noise(rng, shape, 0.35 * hole_px, 1.2 * hole_px)
    ragged = smooth_noise(rng, shape, 4.0 / q)
    cloud_noise = smooth_noise(rng, shape, 2.5 / q, 12.0 / q)

    rho = _normalised_radius(
        s, v, (plan.centre_s_mm, plan.centre_v_mm), (plan.along_mm, plan.across_mm), plan.angle_rad, plan.lobes
    )
    if plan.irregularity > 0:
        rho /= 1.0 + np.float32(plan.irregularity) * np.clip(ragged * np.float32(0.5), -1.0, 1.0)
    depth = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))

    delta = np.zeros(shape, dtype=np.float32)
    if plan.malignant:
        transition = smoothstep(plan.transition_start, 1.0, rho)  # 0 in the core, 1 at the margin
        # Moth-eaten / permeative destruction: holes that thin out towards a ragged front,
        # so bone fades into normal over a wide zone of transition.
        threshold = transition * np.float32(3.2) + ragged * np.float32(0.6) - np.float32(1.2)
        holes = smoothstep(-1.3, 1.3, fine - threshold)
        core = 1.0 - smoothstep(0.7 * plan.transition_start, 1.1 * plan.transition_start, rho)
        lysis = np.maximum(core, holes)
        lysis *= 1.0 - smoothstep(0.85, 1.0, rho)
        if plan.matrix == "mixed":
            lysis *= 1.0 - smoothstep(-0.2, 0.5, cloud_noise)
        delta -= lysis * (np.float32(plan.lysis) * medulla + np.float32(plan.cortical_loss) * cortex)
        if plan.blastic_density > 0:
            # Tumour bone: cloud-like, fading into the wide zone of transition.
            sclerosis = smoothstep(-1.4, 1.4, cloud_noise + 0.35 * fine) * (1.0 - transition) * (0.6 + 0.4 * depth)
            delta += np.float32(plan.blastic_density) * sclerosis
        mask = inside_bone & (rho < 1.0)
        soft = region(maps.soft_path_mm)
        mask |= _malignant_surroundings(plan, bone, s, v, radius, soft, cloud_noise, ragged, delta, q, top, left)
    else:
        scale = min(plan.along_mm, plan.across_mm)
        distance = (rho - 1.0) * np.float32(scale)  # mm outside the margin (approximately)
        half_edge = 0.5 * plan.edge_mm
        inside = 1.0 - smoothstep(-half_edge, half_edge, distance)
        if plan.matrix == "lytic":
            delta -= (
                inside
                * (0.7 + 0.3 * depth)
                * (np.float32(plan.lysis) * medulla + np.float32(plan.cortical_loss) * cortex)
            )
            if plan.septa > 0:
                # A few thin bony septa (a "soap-bubble" look) where a smooth noise crosses zero.
                delta += inside * np.float32(plan.septa) * np.exp(-np.square(cloud_noise * np.float32(1.0 / 0.15)))
            # Sclerotic rim: a band of dense reactive bone hugging the margin, fading out
            # over its outer third.
            rim = (1.0 - inside) * (1.0 - smoothstep(0.6 * plan.rim_mm, plan.rim_mm, distance))
            delta += np.float32(plan.rim_attenuation) * rim
            mask = inside_bone & (distance < plan.rim_mm)
        else:
            delta += inside * np.float32(plan.blastic_density) * (0.8 + 0.2 * depth) * (1.0 + 0.12 * fine)
            mask = inside_bone & (distance < half_edge)
    delta *= mask
    modification = Modification(top=top, left=left, delta=delta, mask=mask)

    centre_mm = bone.point_mm(plan.centre_s_mm, plan.centre_v_mm)
    axis_angle = float(np.degrees(np.arctan2(bone.axis[1], bone.axis[0]) + plan.angle_rad))
    full_mask = np.zeros((protocol.rows, protocol.columns), dtype=np.uint8)
    full_mask[modification.window] = mask
    info = {
        "type": plan.matrix,
        "pattern": plan.pattern,
        "location": plan.location,
        "centre_xy_px": [centre_mm[0] / q, centre_mm[1] / q],
        "radii_mm": [plan.along_mm, plan.across_mm],
        "radii_px": [plan.along_mm / q, plan.across_mm / q],
        "long_axis_angle_deg": axis_angle,
        "margin": "ill-defined" if plan.malignant else "well-defined",
        "zone_of_transition_mm": (1.0 - plan.transition_start) * min(plan.along_mm, plan.across_mm)
        if plan.malignant
        else plan.edge_mm,
        "sclerotic_rim": plan.rim_mm > 0,
        "cortex": "destroyed" if plan.malignant else "intact",
        "periosteal_reaction": (
            "codman+sunburst" if plan.spicule_count else "codman+lamellated" if plan.lamella_count else "codman"
        )
        if plan.malignant
        else "none",
        "soft_tissue_mass": bool(plan.mass_sides),
        **mask_extent(full_mask),
    }
    return modification, info


def _pow10(x: np.ndarray) -> np.ndarray:
    squared = x * x
    fourth = squared * squared
    return fourth * fourth * squared


def _malignant_surroundings(
    plan: LesionPlan,
    bone: TubularBone,
    s: np.ndarray,
    v: np.ndarray,
    radius: np.ndarray,
    soft_path_mm: np.ndarray,
    cloud_noise: np.ndarray,
    ragged: np.ndarray,
    delta: np.ndarray,
    mm_per_px: float,
    top: int,
    left: int,
) -> np.ndarray:
    """Add soft-tissue mass and periosteal reaction to ``delta`` in place; return their support (bool).

    Each part is computed only in the window of the lesion box it can reach.
    """
    shape = delta.shape
    support = np.zeros(shape, dtype=bool)
    s = np.broadcast_to(s, shape)
    v = np.broadcast_to(v, shape)
    centre_radius = float(bone.outer(np.array([plan.centre_s_mm]))[0])
    s_mass = plan.centre_s_mm + plan.mass_offset_s_mm
    lobe_reach = 1.0 + sum(a for _, a, _ in plan.mass_lobes) + 0.06
    for side in plan.mass_sides:
        inner_edge, outer_edge = 0.2 * centre_radius, centre_radius + plan.mass_beyond_cortex_mm
        mass_v = side * 0.5 * (inner_edge + outer_edge)
        mass_b = 0.5 * (outer_edge - inner_edge)
        window = _window(
            bone,
            (s_mass - plan.mass_along_mm * lobe_reach, s_mass + plan.mass_along_mm * lobe_reach),
            (mass_v - mass_b * lobe_reach, mass_v + mass_b * lobe_reach),
            mm_per_px,
            top,
            left,
            shape,
        )
        if window is not None:
            ws, wv = s[window], v[window]
            outward = side * wv - radius[window]  # mm beyond the periosteal surface on this side
            rho_m = _normalised_radius(ws, wv, (s_mass, mass_v), (plan.mass_along_mm, mass_b), 0.0, plan.mass_lobes)
            rho_m /= 1.0 + np.float32(0.05) * np.clip(ragged[window] * np.float32(0.5), -1.0, 1.0)
            in_mass = rho_m < 1.0
            # A soft-edged mass: thickness falls off more gently than an ellipsoid's.
            depth = np.float32(1.8 * mass_b) * np.power(np.maximum(1.0 - rho_m * rho_m, 0.0), np.float32(0.8))
            # The mass replaces fat and muscle inside the limb and bulges the skin outside it.
            change = depth * np.float32(MU_MASS) - np.minimum(depth, soft_path_mm[window]) * np.float32(_MU_DISPLACED)
            cloud = cloud_noise[window]
            if plan.mass_ossification > 0:
                change += np.float32(plan.mass_ossification / (1.8 * mass_b)) * smoothstep(-1.2, 2.0, cloud) * depth
            if plan.spicule_count:
                # Sunburst: fine spicules of tumour bone radiating from the lesion, densest
                # near the cortex ("hair-on-end").
                origin_v = side * 0.3 * centre_radius
                angle = np.arctan2(ws - np.float32(plan.centre_s_mm), side * (wv - np.float32(origin_v)))
                wobble = ragged[window] * np.float32(3.0) + cloud * np.float32(1.5)
                lines = _pow10(
                    np.float32(0.5) + np.float32(0.5) * np.cos(angle * np.float32(plan.spicule_count) + wobble)
                )
                length = plan.spicule_length_mm * plan.mass_beyond_cortex_mm
                radial = smoothstep(-0.5, 1.0, outward) * np.exp(
                    -np.maximum(outward, 0.0) * np.float32(1.0 / (0.5 * length))
                )
                radial *= 1.0 - smoothstep(0.7 * length, length, outward)
                fan = np.maximum(np.cos(angle), 0.0)
                strength = 0.5 + 0.5 * smoothstep(-1.0, 1.0, cloud)
                change += np.float32(plan.spicule_attenuation) * lines * radial * fan * strength
            delta[window] += change * in_mass
            support[window] |= in_mass
        if plan.lamella_count:
            # Lamellated ("onion-skin") periosteal new bone, broken through at the centre.
            reach = (plan.lamella_count + 0.8) * plan.lamella_spacing_mm
            window = _window(
                bone,
                (s_mass - 0.95 * plan.mass_along_mm, s_mass + 0.95 * plan.mass_along_mm),
                (side * (centre_radius - 2.0), side * (centre_radius + reach + 2.0)),
                mm_per_px,
                top,
                left,
                shape,
            )
            if window is not None:
                outward = side * v[window] - radius[window]
                along = np.abs(s[window] - np.float32(s_mass))
                extent = smoothstep(0.3 * plan.mass_along_mm, 0.45 * plan.mass_along_mm, along)
                extent *= 1.0 - smoothstep(0.8 * plan.mass_along_mm, 0.95 * plan.mass_along_mm, along)
                lines = np.zeros_like(outward)
                for k in range(1, plan.lamella_count + 1):
                    lines += np.exp(
                        -np.square((outward - np.float32(k * plan.lamella_spacing_mm)) * np.float32(1.0 / 0.35))
                    )
                zone = (outward > 0.0) & (outward < reach) & (extent > 0)
                delta[window] += np.float32(plan.lamella_attenuation) * lines * extent * zone
                support[window] |= zone
        # Codman triangles where the elevated periosteum meets the cortex at the mass's
        # ends, only where there is a shaft-like cortex (not beyond the articular end).
        for end in (-1.0, 1.0):
            s_end = s_mass + end * 0.9 * plan.mass_along_mm
            if s_end < plan.shaft_start_mm:
                continue
            edge_radius = float(bone.outer(np.array([s_end]))[0])
            window = _window(
                bone,
                (s_end - 3.5, s_end + plan.codman_length_mm + 0.5)
                if end > 0
                else (s_end - plan.codman_length_mm - 0.5, s_end + 3.5),
                (side * (edge_radius - 2.0), side * (edge_radius + plan.codman_height_mm + 2.0)),
                mm_per_px,
                top,
                left,
                shape,
            )
            if window is None:
                continue
            outward = side * v[window] - radius[window]
            beyond = np.float32(end) * (s[window] - np.float32(s_end))
            height = np.where(
                beyond >= 0,
                np.float32(plan.codman_height_mm) * (1.0 - beyond * np.float32(1.0 / plan.codman_length_mm)),
                np.float32(plan.codman_height_mm) * smoothstep(-3.0, 0.0, beyond),
            )
            # New bone is densest against the cortex and thins towards the lifted periosteum.
            triangle = smoothstep(-0.3, 0.3, outward) * (1.0 - smoothstep(-0.5, 0.0, outward - height))
            triangle *= 1.0 - 0.5 * np.clip(outward / np.maximum(height, 0.3), 0.0, 1.0)
            zone = (
                (outward > -0.4)
                & (outward < height)
                & (beyond > -3.2)
                & (beyond < plan.codman_length_mm)
                & (height > 0.3)
            )
            delta[window] += np.float32(0.45 * MU_CORTEX_EXCESS * 12.0) * triangle * zone * ~support[window]
            support[window] |= zone
    return support
