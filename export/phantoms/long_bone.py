"""AP radiographs of a long bone (distal femur, proximal tibia, proximal humerus) with a bone lesion.

The scene is a knee or a shoulder seen antero-posteriorly: the main bone's articular end
with its epiphysis, metaphyseal flare and shaft (cortex, medullary canal, trabecular
texture, growth plate), the bones across the joint, and the soft tissue of the limb.
The lesion lives in the main bone; its mask is exact (see :mod:`._lesion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._acquisition import equalise
from ._anatomy import (
    MU_CORTEX_EXCESS,
    MU_FAT,
    MU_MUSCLE,
    Ellipsoid,
    Notch,
    Physis,
    SoftTissueCylinder,
    TubularBone,
    bone_end_outline,
    sub_grid,
)
from ._lesion import draw_lesion, render_lesion
from ._primitives import Grid, Profile, band_noise, smoothstep
from ._protocol import Protocol, calibrate, draw_protocol, streams, windows_for
from ._render import render_stored
from .phantom import LABELS, Phantom

_BODY_PARTS = ("FEMUR", "TIBIA", "HUMERUS")
_BODY_PART_WEIGHTS = (0.45, 0.35, 0.20)
_PROFILE_STEP_MM = 0.25
_BONE_LENGTH_MM = 700.0  # longer than any field of view: shafts always leave the image
# The anatomy is smooth at the scale of two pixels; rendering it at half resolution and
# upsampling costs a quarter of the time. Lesions are rendered at full resolution.
_REDUCTION = 2


@dataclass(frozen=True)
class LongBoneScene:
    """Everything drawn in a long-bone radiograph, in patient-plane mm.

    ``main_bone`` carries the lesion; ``other_bones``/``ellipsoids`` are the rest of the
    joint; ``limb`` (and ``trunk`` for a shoulder) the soft tissue. ``lesion_range_mm``
    are the distances from the main bone's articular surface where a lesion may sit.
    """

    body_part: str
    laterality: str
    main_bone: TubularBone
    other_bones: tuple[TubularBone, ...]
    ellipsoids: tuple[Ellipsoid, ...]
    limb: SoftTissueCylinder
    trunk: SoftTissueCylinder | None
    lung: SoftTissueCylinder | None
    benign_range_mm: tuple[float, float]
    malignant_range_mm: tuple[float, float]
    regions_mm: tuple[float, float]  # main bone: end of the epiphysis, start of the diaphysis
    texture_amplitude: float


@dataclass(frozen=True)
class AnatomyMaps:
    """Half-resolution line-integral maps (float32, reduced grid).

    ``total`` is the anatomy's whole line integral; ``main_cortex``/``main_medulla`` the
    main bone's excess (medulla textured); ``soft_path_mm`` the path length through the
    limb's soft tissue; ``body`` (bool) where the patient is.
    """

    total: np.ndarray
    main_cortex: np.ndarray
    main_medulla: np.ndarray
    soft_path_mm: np.ndarray
    body: np.ndarray


def long_bone_radiograph(
    seed: int,
    *,
    label: str | None = None,
    rows: int | None = None,
    columns: int | None = None,
    bits_stored: int | None = None,
    photometric: str | None = None,
    body_part: str | None = None,
    detected_quanta: float | None = None,
) -> Phantom:
    """A synthetic AP radiograph of a long bone with an exactly known lesion.

    Args:
        seed: non-negative integer; the same seed always gives the same phantom.
        label: "no_tumour", "benign" or "malignant"; drawn from the seed when ``None``.
            Changing it leaves everything but the lesion unchanged, so the phantoms
            for two labels differ exactly in the lesion mask.
        rows, columns: image size in pixels (drawn in 2000..3000 when ``None``).
        bits_stored: 8..16 (drawn from 10, 12, 14, 15, 16 when ``None``).
        photometric: "MONOCHROME1" or "MONOCHROME2" (30 % MONOCHROME1 when ``None``).
        body_part: "FEMUR", "TIBIA" or "HUMERUS" (drawn when ``None``).
        detected_quanta: detected X-ray quanta per pixel at mid-grey; sets the noise
            (drawn in 1200..8000 when ``None``; more quanta, less noise, smaller files).

    Returns:
        A :class:`Phantom` with ``kind="long_bone"``, ``stored`` uint16[rows, columns],
        ``lesion_mask`` uint8[rows, columns] and ``label``.
    """
    rng = streams(seed, "long_bone")
    protocol = draw_protocol(
        rng["acquisition"],
        "long_bone",
        seed,
        rows=rows,
        columns=columns,
        bits_stored=bits_stored,
        photometric=photometric,
        detected_quanta=detected_quanta,
    )
    drawn_label = str(rng["label"].choice(LABELS))
    label = drawn_label if label is None else label
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    scene = draw_scene(rng["anatomy"], protocol, body_part)
    grid = Grid.reduced(protocol.rows, protocol.columns, _REDUCTION, protocol.mm_per_px)
    maps = render_anatomy(scene, grid, rng["texture"])
    open_field = protocol.collimation.outside_distance_px(grid.x_px, grid.y_px) < -protocol.collimation.penumbra_px
    line_integrals = equalise(
        maps.total + protocol.detector.beam_attenuation(grid, protocol.rows, protocol.columns),
        open_field,
        protocol.equalisation_sigma_mm / grid.mm_per_px / _REDUCTION,
        protocol.equalisation_strength,
    )
    line_integrals += protocol.collimation.attenuation(grid)
    in_body = maps.body & open_field
    bone = (maps.main_cortex + maps.main_medulla > 0.08) & open_field
    detector, response = calibrate(protocol, line_integrals[in_body])
    windows, explanations = windows_for(protocol, detector, response, line_integrals[in_body], line_integrals[bone])

    modification = None
    lesion_info = None
    if label != "no_tumour":
        plan = draw_lesion(
            rng["lesion"],
            label,
            scene.main_bone,
            protocol,
            scene.benign_range_mm,
            scene.malignant_range_mm,
            scene.regions_mm,
        )
        modification, lesion_info = render_lesion(plan, scene.main_bone, protocol, maps, rng["lesion"])
    stored = render_stored(protocol, line_integrals, detector, response, rng["noise"], modification)

    if protocol.collimation.electronic_fill:
        # The modality blanks the shuttered area to the brightest value (white on display).
        stored[protocol.collimation.shuttered(protocol.rows, protocol.columns)] = protocol.max_stored
    if protocol.photometric == "MONOCHROME1":
        stored = (protocol.max_stored - stored).astype(np.uint16)

    mask = np.zeros((protocol.rows, protocol.columns), dtype=np.uint8)
    if modification is not None:
        mask[modification.window] = modification.mask
    header = dict(protocol.header)
    header.update(
        {
            "ViewPosition": "AP",
            "ImageLaterality": scene.laterality,
            # AP view hung head up: image right is the patient's left, down is the feet.
            "PatientOrientation": ("L", "F"),
        }
    )
    return Phantom(
        kind="long_bone",
        seed=int(seed),
        stored=stored,
        bits_stored=protocol.bits_stored,
        photometric=protocol.photometric,
        imager_pixel_spacing_mm=(protocol.imager_pixel_spacing_mm, protocol.imager_pixel_spacing_mm),
        windows=windows,
        voi_function=protocol.voi_function,
        body_part=scene.body_part,
        lesion_mask=mask,
        label=label,
        lesion=lesion_info,
        vertebrae=None,
        window_explanations=explanations,
        magnification=protocol.magnification,
        dicom_header=_with_spacing(header, protocol),
    )


def _with_spacing(header: dict, protocol: Protocol) -> dict:
    if protocol.writes_pixel_spacing:
        header["PixelSpacing"] = (round(protocol.mm_per_px, 6), round(protocol.mm_per_px, 6))
    if protocol.writes_magnification:
        header["EstimatedRadiographicMagnificationFactor"] = round(protocol.magnification, 4)
    return header


def draw_scene(rng: np.random.Generator, protocol: Protocol, body_part: str | None = None) -> LongBoneScene:
    """Draw a knee (FEMUR / TIBIA main bone) or shoulder (HUMERUS) scene fitted to the field of view."""
    drawn = str(rng.choice(_BODY_PARTS, p=_BODY_PART_WEIGHTS))
    body_part = drawn if body_part is None else body_part
    if body_part not in _BODY_PARTS:
        raise ValueError(f"body_part must be one of {_BODY_PARTS}, got {body_part!r}")
    if body_part == "HUMERUS":
        return _shoulder(rng, protocol)
    return _knee(rng, protocol, body_part)


def _unit(angle_deg: float, pointing_down: bool) -> tuple[float, float]:
    angle = np.deg2rad(angle_deg)
    return (float(np.sin(angle)), float(np.cos(angle) if pointing_down else -np.cos(angle)))


def _trabecular_profile(
    s: np.ndarray, cap: float, flare: float, epiphysis: float, metaphysis: float, diaphysis: float
) -> np.ndarray:
    """Medulla excess attenuation (mm^-1) along a bone: dense cancellous ends, fatty marrow in the shaft."""
    to_meta = smoothstep(0.6 * cap, 1.2 * cap, s)
    to_dia = smoothstep(cap + 0.4 * flare, cap + 1.1 * flare, s)
    fraction = epiphysis + (metaphysis - epiphysis) * to_meta
    fraction = fraction + (diaphysis - fraction) * to_dia
    # Fatty marrow is slightly less attenuating than muscle.
    return fraction * MU_CORTEX_EXCESS - 0.0015


def _tubular_bone(
    name: str,
    end_xy_mm: tuple[float, float],
    axis: tuple[float, float],
    *,
    shaft_half_width: float,
    end_half_width: float,
    cap: float,
    cap_exponent: float,
    flare: float,
    flare_power: float,
    shaft_cortex: float,
    end_cortex: float,
    subchondral: float,
    end_depth_ratio: float,
    trabecular: tuple[float, float, float],
    bow_mm: float = 0.0,
    head_offset_mm: float = 0.0,
    notch: Notch | None = None,
    physis: Physis | None = None,
    length_mm: float | None = None,
) -> TubularBone:
    """A :class:`TubularBone` from its dimensions (mm); ``length_mm`` closes the far end (a short bone)."""

    def far_end(s):
        if length_mm is None:
            return np.ones_like(s)
        return np.sqrt(np.clip((length_mm - s) / (0.5 * shaft_half_width), 0.0, 1.0))

    def outer(s):
        return far_end(s) * bone_end_outline(
            s,
            cap_mm=cap,
            cap_exponent=cap_exponent,
            end_half_width_mm=end_half_width,
            shaft_half_width_mm=shaft_half_width,
            flare_mm=flare,
            flare_power=flare_power,
        )

    def inner(s):
        cortex = end_cortex + (shaft_cortex - end_cortex) * smoothstep(cap + 0.3 * flare, cap + 1.15 * flare, s)
        from_outline = outer(s) - cortex
        inner_cap = bone_end_outline(
            s - subchondral,
            cap_mm=max(cap - subchondral, 1.0),
            cap_exponent=cap_exponent,
            end_half_width_mm=end_half_width - end_cortex,
            shaft_half_width_mm=shaft_half_width - shaft_cortex,
            flare_mm=flare,
            flare_power=flare_power,
        )
        closed = far_end(s + 2.0 * end_cortex) * (shaft_half_width - shaft_cortex)
        return np.maximum(
            np.minimum(np.minimum(from_outline, np.where(s < cap, inner_cap, np.inf)), closed if length_mm else np.inf),
            0.0,
        )

    def depth(s):
        return end_depth_ratio + (1.0 - end_depth_ratio) * smoothstep(cap, cap + flare, s)

    def offset(s):
        bow = bow_mm * np.square(np.clip(s, 0, None) / 250.0)
        head = head_offset_mm * (1.0 - smoothstep(0.0, cap + 0.6 * flare, s))
        return bow + head

    start, stop = -2.0, _BONE_LENGTH_MM
    return TubularBone(
        name=name,
        end_xy_mm=end_xy_mm,
        axis=axis,
        length_mm=_BONE_LENGTH_MM,
        outer=Profile.sample(outer, start, stop, _PROFILE_STEP_MM),
        inner=Profile.sample(inner, start, stop, _PROFILE_STEP_MM),
        depth_ratio=Profile.sample(depth, start, stop, _PROFILE_STEP_MM),
        medulla_excess=Profile.sample(
            lambda s: _trabecular_profile(s, cap, flare, *trabecular), start, stop, _PROFILE_STEP_MM
        ),
        centre_offset=Profile.sample(offset, start, stop, _PROFILE_STEP_MM),
        max_half_width_mm=float(end_half_width),
        notch=notch,
        physis=physis,
    )


def _physis(rng: np.random.Generator, cap: float, age_years: int, scale: float) -> Physis:
    return Physis(
        distance_mm=cap * float(rng.uniform(0.75, 1.05)) + float(rng.uniform(2.0, 7.0)),
        open=age_years < 17,
        wave_amplitude_mm=float(rng.uniform(1.0, 2.5)) * scale,
        wave_length_mm=float(rng.uniform(18.0, 30.0)) * scale,
        phase=float(rng.uniform(0, 2 * np.pi)),
        width_mm=float(rng.uniform(0.8, 1.3)),
    )


def _knee(rng: np.random.Generator, protocol: Protocol, body_part: str) -> LongBoneScene:
    """Distal femur and proximal tibia (with fibula and patella) around an AP knee."""
    width_mm = protocol.columns * protocol.mm_per_px
    height_mm = protocol.rows * protocol.mm_per_px
    tilt = float(rng.uniform(-7.0, 7.0))
    lateral = float(rng.choice((-1.0, 1.0)))
    gap = float(rng.uniform(4.0, 8.0))
    joint_x = width_mm * float(rng.uniform(0.42, 0.58))
    femur_main = body_part == "FEMUR"
    joint_y = height_mm * float(rng.uniform(0.72, 0.84) if femur_main else rng.uniform(0.16, 0.28))
    up = _unit(tilt, pointing_down=False)
    down = (-up[0], -up[1])

    f_shaft = float(rng.uniform(12.5, 15.0))
    f_end = f_shaft * float(rng.uniform(2.55, 2.9))
    f_cap = float(rng.uniform(18.0, 24.0))
    f_flare = float(rng.uniform(85.0, 110.0))
    femur = _tubular_bone(
        "femur",
        (joint_x + up[0] * gap / 2, joint_y + up[1] * gap / 2),
        up,
        shaft_half_width=f_shaft,
        end_half_width=f_end,
        cap=f_cap,
        cap_exponent=float(rng.uniform(3.6, 4.6)),
        flare=f_flare,
        flare_power=float(rng.uniform(2.8, 3.6)),
        shaft_cortex=f_shaft * float(rng.uniform(0.32, 0.42)),
        end_cortex=float(rng.uniform(1.2, 2.0)),
        subchondral=float(rng.uniform(1.5, 2.5)),
        end_depth_ratio=float(rng.uniform(0.70, 0.80)),
        trabecular=(float(rng.uniform(0.20, 0.28)), float(rng.uniform(0.14, 0.21)), float(rng.uniform(0.02, 0.05))),
        bow_mm=float(rng.uniform(-6.0, 6.0)),
        notch=Notch(float(rng.uniform(13.0, 19.0)), float(rng.uniform(8.0, 11.0)), float(rng.uniform(0.45, 0.65))),
        physis=_physis(rng, f_cap, protocol.age_years, 1.0),
    )
    t_shaft = float(rng.uniform(13.0, 16.0))
    t_end = t_shaft * float(rng.uniform(2.3, 2.6))
    t_cap = float(rng.uniform(6.0, 10.0))
    t_flare = float(rng.uniform(70.0, 90.0))
    tibia = _tubular_bone(
        "tibia",
        (joint_x + down[0] * gap / 2, joint_y + down[1] * gap / 2),
        down,
        shaft_half_width=t_shaft,
        end_half_width=t_end,
        cap=t_cap,
        cap_exponent=float(rng.uniform(4.0, 6.0)),
        flare=t_flare,
        flare_power=float(rng.uniform(2.8, 3.6)),
        shaft_cortex=t_shaft * float(rng.uniform(0.35, 0.45)),
        end_cortex=float(rng.uniform(1.2, 2.0)),
        subchondral=float(rng.uniform(1.5, 2.5)),
        end_depth_ratio=float(rng.uniform(0.72, 0.82)),
        trabecular=(float(rng.uniform(0.20, 0.28)), float(rng.uniform(0.14, 0.21)), float(rng.uniform(0.02, 0.05))),
        bow_mm=float(rng.uniform(-4.0, 4.0)),
        physis=_physis(rng, t_cap + 8.0, protocol.age_years, 1.0),
    )
    fibula_head_s = float(rng.uniform(10.0, 20.0))
    # "across" runs along the axis turned by +90 degrees: towards -x for a downward axis.
    fibula_across = -lateral * float(rng.uniform(25.0, 30.0))
    fibula_end = (
        tibia.end_xy_mm[0] + down[0] * fibula_head_s - fibula_across * down[1],
        tibia.end_xy_mm[1] + down[1] * fibula_head_s + fibula_across * down[0],
    )
    fibula_shaft = float(rng.uniform(6.0, 8.0))
    fibula = _tubular_bone(
        "fibula",
        fibula_end,
        down,
        shaft_half_width=fibula_shaft,
        end_half_width=float(rng.uniform(10.0, 13.0)),
        cap=float(rng.uniform(5.0, 8.0)),
        cap_exponent=2.2,
        flare=float(rng.uniform(20.0, 30.0)),
        flare_power=2.5,
        shaft_cortex=fibula_shaft * 0.35,
        end_cortex=1.0,
        subchondral=1.2,
        end_depth_ratio=0.9,
        trabecular=(0.2, 0.16, 0.05),
    )
    patella_s = f_cap * float(rng.uniform(0.4, 1.2)) + float(rng.uniform(0.0, 12.0))
    patella_centre = femur.point_mm(patella_s, lateral * float(rng.uniform(1.0, 6.0)))
    patella = Ellipsoid(
        centre_xy_mm=patella_centre,
        semi_axes_mm=(float(rng.uniform(22.0, 26.0)), float(rng.uniform(20.0, 24.0))),
        angle_rad=float(np.arctan2(up[1], up[0])),
        half_depth_mm=float(rng.uniform(9.0, 12.0)),
        shell_mm=float(rng.uniform(1.0, 1.6)),
        medulla_excess=0.2 * MU_CORTEX_EXCESS,
    )

    knee_width = f_end + float(rng.uniform(14.0, 24.0))
    thigh_width = float(rng.uniform(62.0, 85.0))
    calf_width = float(rng.uniform(45.0, 62.0))
    knee_fat, thigh_fat, calf_fat = float(rng.uniform(4, 10)), float(rng.uniform(8, 22)), float(rng.uniform(6, 16))
    limb_offset = lateral * float(rng.uniform(0.0, 10.0))

    def limb_width(t):  # t: distance from the joint towards the hip (mm)
        return np.where(
            t >= 0,
            knee_width + (thigh_width - knee_width) * smoothstep(0, 170, t),
            knee_width + (calf_width - knee_width) * smoothstep(0, 110, -t),
        )

    def limb_fat(t):
        return np.where(
            t >= 0,
            knee_fat + (thigh_fat - knee_fat) * smoothstep(0, 150, t),
            knee_fat + (calf_fat - knee_fat) * smoothstep(0, 100, -t),
        )

    limb = SoftTissueCylinder(
        origin_xy_mm=(joint_x, joint_y),
        axis=up,
        half_width=Profile.sample(limb_width, -700.0, 700.0, 1.0),
        fat=Profile.sample(limb_fat, -700.0, 700.0, 1.0),
        centre_offset=Profile.sample(lambda t: limb_offset * smoothstep(0, 150, t), -700.0, 700.0, 1.0),
        depth_ratio=float(rng.uniform(0.85, 1.0)),
    )
    texture_amplitude = float(rng.uniform(0.25, 0.38))
    if femur_main:
        main, others = femur, (tibia, fibula)
        cap, flare = f_cap, f_flare
    else:
        main, others = tibia, (femur, fibula)
        cap, flare = t_cap, t_flare
    # Image left is the patient's right in an AP view: the fibula is lateral.
    laterality = "R" if (lateral < 0) else "L"
    return LongBoneScene(
        body_part=body_part,
        laterality=laterality,
        main_bone=main,
        other_bones=others,
        ellipsoids=(patella,),
        limb=limb,
        trunk=None,
        lung=None,
        benign_range_mm=(0.6 * cap, cap + 0.7 * flare + 20.0),
        malignant_range_mm=(cap + 8.0, cap + flare + 50.0),
        regions_mm=(cap, cap + flare),
        texture_amplitude=texture_amplitude,
    )


def _shoulder(rng: np.random.Generator, protocol: Protocol) -> LongBoneScene:
    """Proximal humerus with glenoid, scapula, acromion and clavicle, and the chest wall."""
    width_mm = protocol.columns * protocol.mm_per_px
    height_mm = protocol.rows * protocol.mm_per_px
    tilt = float(rng.uniform(-6.0, 6.0))
    lateral = float(rng.choice((-1.0, 1.0)))
    down = _unit(tilt, pointing_down=True)
    top_x = width_mm * (0.5 + lateral * float(rng.uniform(0.02, 0.10)))
    top_y = height_mm * float(rng.uniform(0.10, 0.18))

    h_shaft = float(rng.uniform(10.0, 12.5))
    h_end = float(rng.uniform(21.0, 25.0))
    h_cap = float(rng.uniform(18.0, 24.0))
    h_flare = float(rng.uniform(45.0, 65.0))
    humerus = _tubular_bone(
        "humerus",
        (top_x, top_y),
        down,
        shaft_half_width=h_shaft,
        end_half_width=h_end,
        cap=h_cap,
        cap_exponent=float(rng.uniform(1.9, 2.3)),
        flare=h_flare,
        flare_power=float(rng.uniform(2.8, 3.8)),
        shaft_cortex=h_shaft * float(rng.uniform(0.30, 0.40)),
        end_cortex=float(rng.uniform(1.0, 1.6)),
        subchondral=float(rng.uniform(1.2, 2.0)),
        end_depth_ratio=float(rng.uniform(0.9, 1.0)),
        trabecular=(float(rng.uniform(0.18, 0.26)), float(rng.uniform(0.13, 0.19)), float(rng.uniform(0.02, 0.05))),
        bow_mm=float(rng.uniform(-3.0, 3.0)),
        head_offset_mm=lateral * float(rng.uniform(3.0, 7.0)),  # medially (across is -x here)
        physis=_physis(rng, h_cap, protocol.age_years, 1.3),
    )
    medial = -lateral
    glenoid_centre = humerus.point_mm(h_cap * 0.6, lateral * (h_end + float(rng.uniform(3.0, 6.0)) + 6.0))
    glenoid = Ellipsoid(
        centre_xy_mm=glenoid_centre,
        semi_axes_mm=(float(rng.uniform(16.0, 20.0)), float(rng.uniform(5.0, 7.0))),
        angle_rad=float(np.arctan2(down[1], down[0])),
        half_depth_mm=float(rng.uniform(7.0, 9.0)),
        shell_mm=1.2,
        medulla_excess=0.15 * MU_CORTEX_EXCESS,
    )
    border_angle = tilt + medial * float(rng.uniform(22.0, 34.0))
    scapula_border = _tubular_bone(
        "scapula",
        (glenoid_centre[0], glenoid_centre[1] + 14.0),
        _unit(border_angle, pointing_down=True),
        shaft_half_width=4.5,
        end_half_width=8.0,
        cap=4.0,
        cap_exponent=3.0,
        flare=25.0,
        flare_power=2.5,
        shaft_cortex=1.8,
        end_cortex=1.2,
        subchondral=1.2,
        end_depth_ratio=0.8,
        trabecular=(0.15, 0.12, 0.08),
        length_mm=float(rng.uniform(110.0, 140.0)),
    )
    scapula_body = Ellipsoid(
        centre_xy_mm=(glenoid_centre[0] + medial * 55.0, glenoid_centre[1] + 45.0),
        semi_axes_mm=(85.0, 50.0),
        angle_rad=float(np.deg2rad(90.0 + medial * 20.0)),
        half_depth_mm=4.0,
        shell_mm=0.8,
        medulla_excess=0.25 * MU_CORTEX_EXCESS,
    )
    acromion_y = top_y - float(rng.uniform(7.0, 12.0))
    acromion = _tubular_bone(
        "acromion",
        (top_x + lateral * float(rng.uniform(8.0, 16.0)), acromion_y),
        (medial, 0.0),
        shaft_half_width=7.0,
        end_half_width=8.5,
        cap=5.0,
        cap_exponent=2.5,
        flare=20.0,
        flare_power=2.5,
        shaft_cortex=2.0,
        end_cortex=1.2,
        subchondral=1.2,
        end_depth_ratio=0.9,
        trabecular=(0.15, 0.12, 0.1),
    )
    clavicle_angle = float(rng.uniform(-12.0, -4.0))
    cos, sin = np.cos(np.deg2rad(clavicle_angle)), np.sin(np.deg2rad(clavicle_angle))
    clavicle = _tubular_bone(
        "clavicle",
        (top_x + medial * 25.0, acromion_y - 2.0),
        (float(medial * cos), float(sin)),
        shaft_half_width=float(rng.uniform(6.5, 8.5)),
        end_half_width=10.0,
        cap=6.0,
        cap_exponent=2.5,
        flare=25.0,
        flare_power=2.5,
        shaft_cortex=2.5,
        end_cortex=1.2,
        subchondral=1.2,
        end_depth_ratio=0.8,
        trabecular=(0.15, 0.12, 0.08),
    )

    arm_width = float(rng.uniform(38.0, 50.0))
    deltoid = float(rng.uniform(8.0, 15.0))
    arm_fat = float(rng.uniform(5.0, 15.0))

    def arm_width_profile(s):
        shoulder_top = -(h_end + 18.0)
        width = arm_width + deltoid * np.exp(-np.square((s - 40.0) / 55.0))
        cap = np.sqrt(np.clip(1.0 - np.square(np.minimum(s, 0.0) / shoulder_top), 0.0, 1.0))
        return np.where(s < shoulder_top, 0.0, width * cap)

    limb = SoftTissueCylinder(
        origin_xy_mm=(top_x, top_y),
        axis=down,
        half_width=Profile.sample(arm_width_profile, -700.0, 700.0, 1.0),
        fat=Profile.sample(lambda s: np.full_like(s, arm_fat), -700.0, 700.0, 1.0),
        centre_offset=Profile.sample(lambda s: np.zeros_like(s), -700.0, 700.0, 1.0),
        depth_ratio=float(rng.uniform(0.9, 1.0)),
    )
    trunk_centre_x = top_x + medial * float(rng.uniform(175.0, 215.0))
    trunk = SoftTissueCylinder(
        origin_xy_mm=(trunk_centre_x, 0.0),
        axis=(0.0, 1.0),
        half_width=Profile.sample(lambda s: np.full_like(s, 165.0), -700.0, 700.0, 1.0),
        fat=Profile.sample(lambda s: np.full_like(s, float(rng.uniform(12.0, 22.0))), -700.0, 700.0, 1.0),
        centre_offset=Profile.sample(lambda s: np.zeros_like(s), -700.0, 700.0, 1.0),
        depth_ratio=0.55,
    )
    lung_top = top_y + float(rng.uniform(-10.0, 15.0))
    lung = SoftTissueCylinder(
        origin_xy_mm=(trunk_centre_x, lung_top),
        axis=(0.0, 1.0),
        # Dome-shaped apex, lateral margin widening downwards like the rib cage.
        half_width=Profile.sample(
            lambda s: np.where(s < 0, 0.0, 110.0 * np.sqrt(np.clip(s, 0, None) / 140.0)), -10.0, 700.0, 1.0
        ),
        fat=Profile.sample(lambda s: np.zeros_like(s), -10.0, 700.0, 1.0),
        centre_offset=Profile.sample(lambda s: np.zeros_like(s), -10.0, 700.0, 1.0),
        depth_ratio=0.75,
    )
    laterality = "R" if lateral < 0 else "L"
    return LongBoneScene(
        body_part="HUMERUS",
        laterality=laterality,
        main_bone=humerus,
        other_bones=(scapula_border, acromion, clavicle),
        ellipsoids=(glenoid, scapula_body),
        limb=limb,
        trunk=trunk,
        lung=lung,
        benign_range_mm=(0.7 * h_cap, h_cap + 0.7 * h_flare + 20.0),
        malignant_range_mm=(h_cap + 5.0, h_cap + h_flare + 50.0),
        regions_mm=(h_cap, h_cap + h_flare),
        texture_amplitude=float(rng.uniform(0.25, 0.38)),
    )


def render_anatomy(scene: LongBoneScene, grid: Grid, texture_rng: np.random.Generator) -> AnatomyMaps:
    """Line-integral maps of the scene on ``grid`` (see :class:`AnatomyMaps`)."""
    shape = grid.shape
    px_mm = grid.mm_per_px * _REDUCTION
    # Trabeculae: plates and rods 0.1-0.3 mm thick, 0.5-1.5 mm apart, aligned with the
    # shaft; in projection many layers overlap into a coarse, streaky texture.
    texture = band_noise(texture_rng, shape, max(0.7 / px_mm, 0.8), 3.0 / px_mm, anisotropy=1.7)
    modulation = np.clip(1.0 + np.float32(scene.texture_amplitude) * texture, 0.0, None)

    fat, muscle = scene.limb.paths(grid)
    soft_path = fat + muscle
    total = fat * np.float32(MU_FAT) + muscle * np.float32(MU_MUSCLE)
    body = soft_path > 2.0
    if scene.trunk is not None:
        trunk_fat, trunk_muscle = scene.trunk.paths(grid)
        total += trunk_fat * np.float32(MU_FAT) + trunk_muscle * np.float32(MU_MUSCLE)
        body |= (trunk_fat + trunk_muscle) > 2.0
    if scene.lung is not None:
        _, lung_path = scene.lung.paths(grid)
        # Aerated lung, seen through the chest wall and the scapula: less dense than the
        # tissue it replaces.
        total -= lung_path * np.float32(0.5 * MU_MUSCLE)

    main_cortex = np.zeros(shape, dtype=np.float32)
    main_medulla = np.zeros(shape, dtype=np.float32)
    window = scene.main_bone.window(grid)
    if window is not None:
        cortex, medulla = scene.main_bone.excess(sub_grid(grid, window))
        main_cortex[window] = cortex
        main_medulla[window] = medulla * modulation[window]
    total += main_cortex + main_medulla
    for bone in scene.other_bones:
        window = bone.window(grid)
        if window is None:
            continue
        cortex, medulla = bone.excess(sub_grid(grid, window))
        total[window] += cortex + medulla * modulation[window]
    for part in scene.ellipsoids:
        window = part.window(grid)
        if window is not None:
            total[window] += part.excess(sub_grid(grid, window))
    np.maximum(total, 0.0, out=total)
    return AnatomyMaps(
        total=total, main_cortex=main_cortex, main_medulla=main_medulla, soft_path_mm=soft_path, body=body
    )


__all__ = ["long_bone_radiograph", "LongBoneScene", "AnatomyMaps", "draw_scene", "render_anatomy"]
