"""Lateral lumbar spine radiographs with the seven findings of VinDr-SpineXR and their boxes.

The scene is the lumbar spine of ``spine.draw_spine`` with its wedge fractures undone (they
are the ``vcf`` model's subject, not one of these classes); about half the phantoms stay
normal, the others carry one to three findings, each drawn into the anatomy with the box
that encloses exactly what it changed:

    osteophytes            a bony spur growing from an anterior corner of a body
    disc space narrowing   the two bodies around a disc grow into it: the gap keeps 20-40 %
    surgical implant       pedicle screws into two adjacent bodies, joined by a rod (metal)
    foraminal stenosis     a hypertrophied facet and a posterior spur narrowing the foramen
    spondylolisthesis      a body slipped forward by 15-35 % of its depth
    vertebral collapse     a body flattened to 35-55 % of its height, impacted
    other lesions          a lytic (bone destroyed) or sclerotic (dense) focus in a body

Boxes are ``box_xyxy_px`` (x1, y1, x2, y2) in source-image pixels, continuous coordinates
(the edge of pixel i at i), as radedge reports detections. Deterministic in the seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._anatomy import MU_CORTEX_EXCESS, Ellipsoid, sub_grid
from ._primitives import Grid
from ._protocol import Protocol, draw_protocol, streams
from .dicom import write_dicom
from .phantom import Phantom
from .spine import (
    LUMBAR_LEVELS,
    SpineScene,
    VertebralBody,
    draw_spine,
    expose_spine,
    image_px,
    render_spine,
    spine_grid,
)

#: The detected classes, in the dataset's naming and order.
FINDINGS = (
    "osteophytes",
    "disc space narrowing",
    "surgical implant",
    "foraminal stenosis",
    "spondylolisthesis",
    "vertebral collapse",
    "other lesions",
)
_NAMES = ("T12",) + LUMBAR_LEVELS + ("S1",)  # the scene's bodies, top to bottom
_METAL_EXCESS = 5.0 * MU_CORTEX_EXCESS  # titanium over muscle, per mm
_MARGIN_MM = 0.8  # the rendered edges are smooth over +-0.35 mm


@dataclass(frozen=True)
class Insert:
    """A uniform ellipsoid added to the line integrals after the bone (metal, or a negative
    excess where a lesion destroyed cancellous bone): ``excess_per_mm`` times the path."""

    shape: Ellipsoid
    excess_per_mm: float


@dataclass(frozen=True)
class LesionScene:
    spine: SpineScene
    inserts: tuple[Insert, ...]
    findings: tuple[dict, ...]  # label, level, box_mm (x1, y1, x2, y2 canonical mm)


def spine_lesion_radiograph(
    seed: int,
    findings: Sequence[str] | None = None,
    *,
    rows: int | None = None,
    columns: int | None = None,
    bits_stored: int | None = None,
    photometric: str | None = None,
    detected_quanta: float | None = None,
) -> Phantom:
    """A synthetic lateral lumbar spine radiograph with spine findings and their boxes.

    Args:
        seed: non-negative integer; the same seed (and ``findings``) gives the same phantom.
        findings: labels from ``FINDINGS`` to draw (each once, at a drawn level); ``()`` for a
            normal spine; ``None`` draws them: normal with probability 1/2, else 1-3 findings.
        rows, columns, bits_stored, photometric, detected_quanta: as ``lumbar_spine_radiograph``.

    Returns:
        A :class:`Phantom` with ``kind="lumbar_spine_lesions"``, ``vertebrae`` (L1..L5 as in
        ``lumbar_spine_radiograph``, none fractured) and ``findings``: one dict per finding with
        ``label``, ``level`` ("L4" or "L4-L5") and ``box_xyxy_px``. The anatomy of a seed is the
        same whatever its findings, so ``findings=()`` gives its normal counterpart.
    """
    rng = streams(seed, "lumbar_spine_lesions")
    protocol = draw_protocol(
        rng["acquisition"], "lumbar_spine", seed, rows=rows, columns=columns, bits_stored=bits_stored,
        photometric=photometric, detected_quanta=detected_quanta,
    )
    q = protocol.mm_per_px
    scene, grid, anatomy, bone = lesion_anatomy(rng, protocol, findings)

    stored, windows, explanations = expose_spine(protocol, grid, anatomy, bone, rng["noise"])

    spine = scene.spine
    vertebrae = []
    for vertebra in spine.bodies:
        if vertebra.name not in LUMBAR_LEVELS:
            continue
        corners = {name: image_px(point, spine, protocol.columns, q) for name, point in vertebra.corners_mm().items()}
        centre = np.mean(np.array(list(corners.values())), axis=0)
        vertebrae.append({
            "level": vertebra.name,
            "centre_xy_px": [float(centre[0]), float(centre[1])],
            "corners_xy_px": {name: [float(x), float(y)] for name, (x, y) in corners.items()},
            "heights_px": {"anterior": vertebra.anterior_height_mm / q, "posterior": vertebra.posterior_height_mm / q},
        })
    boxes = [
        {"label": item["label"], "level": item["level"], "box_xyxy_px": box_px(item["box_mm"], spine, protocol.columns, q)}
        for item in scene.findings
    ]
    header = dict(protocol.header)
    header.update({
        "ViewPosition": "LL" if spine.facing_left else "RL",
        "ImageLaterality": "U",
        "PatientOrientation": ("P" if spine.facing_left else "A", "F"),
    })
    if protocol.writes_pixel_spacing:
        header["PixelSpacing"] = (round(q, 6), round(q, 6))
    if protocol.writes_magnification:
        header["EstimatedRadiographicMagnificationFactor"] = round(protocol.magnification, 4)
    return Phantom(
        kind="lumbar_spine_lesions",
        seed=int(seed),
        stored=stored,
        bits_stored=protocol.bits_stored,
        photometric=protocol.photometric,
        imager_pixel_spacing_mm=(protocol.imager_pixel_spacing_mm, protocol.imager_pixel_spacing_mm),
        windows=windows,
        voi_function=protocol.voi_function,
        body_part="LSPINE",
        vertebrae=vertebrae,
        findings=boxes,
        window_explanations=explanations,
        magnification=protocol.magnification,
        dicom_header=header,
    )


def lesion_anatomy(rng: dict[str, np.random.Generator], protocol: Protocol, findings: Sequence[str] | None
                   ) -> tuple[LesionScene, Grid, np.ndarray, np.ndarray]:
    """The scene drawn from a phantom's ``anatomy`` and ``lesion`` streams and rendered with its
    ``texture`` stream: (scene, the half-resolution grid, the anatomy's line integrals
    float32[grid] in image orientation, the bone mask bool[grid])."""
    q = protocol.mm_per_px
    scene = draw_lesion_scene(rng["anatomy"], rng["lesion"], protocol.rows * q, protocol.columns * q, findings)
    grid = spine_grid(protocol)
    anatomy, bone = render_lesion_scene(scene, grid, rng["texture"])
    return scene, grid, anatomy, bone


def box_px(box_mm: tuple[float, float, float, float], scene: SpineScene, columns: int,
           mm_per_px: float) -> list[float]:
    """A canonical mm box -> [x1, y1, x2, y2] in image pixels, the edge of pixel i at i."""
    (xa, ya), (xb, yb) = (image_px(box_mm[:2], scene, columns, mm_per_px),
                          image_px(box_mm[2:], scene, columns, mm_per_px))
    return [round(float(min(xa, xb)) + 0.5, 2), round(float(min(ya, yb)) + 0.5, 2),
            round(float(max(xa, xb)) + 0.5, 2), round(float(max(ya, yb)) + 0.5, 2)]


# -- the scene ---------------------------------------------------------------------------


def draw_lesion_scene(anatomy_rng: np.random.Generator, finding_rng: np.random.Generator, height_mm: float,
                      width_mm: float, findings: Sequence[str] | None) -> LesionScene:
    """The spine (from ``anatomy_rng`` alone) and its findings (from ``finding_rng``), canonical mm."""
    spine = draw_spine(anatomy_rng, height_mm, width_mm)
    bodies = [_unfractured(vertebra, spine) for vertebra in spine.bodies]
    if findings is None:
        labels: list[str] = []
        if finding_rng.random() < 0.5:
            count = int(finding_rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
            labels = [FINDINGS[i] for i in sorted(finding_rng.choice(len(FINDINGS), size=count, replace=False))]
    else:
        unknown = [label for label in findings if label not in FINDINGS]
        if unknown or len(set(findings)) != len(findings):
            raise ValueError(f"findings must be distinct labels from {FINDINGS}; got {list(findings)!r}")
        labels = list(findings)
    # Findings that move or reshape bodies first, so that spurs, screws and foci sit on the
    # final bodies; each finding takes its bodies for itself.
    order = ("spondylolisthesis", "vertebral collapse", "disc space narrowing", "surgical implant",
             "foraminal stenosis", "osteophytes", "other lesions")
    taken: set[int] = set()
    parts, inserts, drawn = list(spine.parts), [], []
    for label in sorted(labels, key=order.index):
        draw = _DRAWERS[label]
        drawn.append(draw(finding_rng, bodies, taken, parts, inserts))
    scene = dataclasses.replace(spine, bodies=tuple(bodies), parts=tuple(parts), fractures={}, reductions={})
    drawn.sort(key=lambda item: FINDINGS.index(item["label"]))
    return LesionScene(scene, tuple(inserts), tuple(drawn))


def _unfractured(vertebra: VertebralBody, spine: SpineScene) -> VertebralBody:
    if vertebra.name not in spine.reductions:
        return vertebra
    return dataclasses.replace(
        vertebra,
        anterior_height_mm=0.98 * vertebra.posterior_height_mm,
        endplate_concavity_mm=vertebra.endplate_concavity_mm - 0.5,
        impaction=0.0,
    )


def _free(rng: np.random.Generator, taken: set[int], span: int, first: int = 1, last: int = 5) -> int:
    """A body index (1..5 = L1..L5) whose ``span`` bodies from it are not yet taken."""
    choices = [i for i in range(first, last + 1) if not taken.intersection(range(i, i + span))]
    if not choices:
        choices = list(range(first, last + 1))
    index = int(rng.choice(choices))
    taken.update(range(index, index + span))
    return index


def _body_box(vertebra: VertebralBody) -> tuple[float, float, float, float]:
    points = np.array(list(vertebra.corners_mm().values()))
    return (*(points.min(0) - _MARGIN_MM), *(points.max(0) + _MARGIN_MM))


def _ellipse_box(shape: Ellipsoid) -> tuple[float, float, float, float]:
    a, b = shape.semi_axes_mm
    c, s = np.cos(shape.angle_rad), np.sin(shape.angle_rad)
    half_x, half_y = np.hypot(a * c, b * s), np.hypot(a * s, b * c)
    x, y = shape.centre_xy_mm
    return (x - half_x - _MARGIN_MM, y - half_y - _MARGIN_MM, x + half_x + _MARGIN_MM, y + half_y + _MARGIN_MM)


def _union(*boxes: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    array = np.array(boxes)
    return (float(array[:, 0].min()), float(array[:, 1].min()), float(array[:, 2].max()), float(array[:, 3].max()))


def _direction(angle: float) -> tuple[float, float]:
    return (float(np.cos(angle)), float(np.sin(angle)))


def _spur(origin: tuple[float, float], direction: tuple[float, float], length: float, thickness: float,
          depth: float) -> Ellipsoid:
    """A bony spur: an ellipsoid from ``origin`` ``length`` mm along ``direction``, half of it buried."""
    centre = (origin[0] + direction[0] * 0.5 * length, origin[1] + direction[1] * 0.5 * length)
    return Ellipsoid(centre, (0.5 * length + 1.5, 0.5 * thickness), float(np.arctan2(direction[1], direction[0])),
                     depth, 0.8, 0.55 * MU_CORTEX_EXCESS)


def _mix(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    norm = np.hypot(a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t)
    return ((a[0] * (1 - t) + b[0] * t) / norm, (a[1] * (1 - t) + b[1] * t) / norm)


def _osteophytes(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 1)
    vertebra = bodies[index]
    superior = bool(rng.random() < 0.5)
    corner = vertebra.corners_mm()["anterior_superior" if superior else "anterior_inferior"]
    vertical = (-vertebra.caudal[0], -vertebra.caudal[1]) if superior else vertebra.caudal
    direction = _mix(vertebra.anterior, vertical, float(rng.uniform(0.3, 0.6)))
    size = vertebra.depth_mm / 34.0
    spur = _spur(corner, direction, float(rng.uniform(7.0, 11.0)) * size, float(rng.uniform(3.5, 5.0)) * size,
                 float(rng.uniform(8.0, 14.0)))
    parts.append(spur)
    return {"label": "osteophytes", "level": vertebra.name, "box_mm": _ellipse_box(spur)}


def _disc_space_narrowing(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 2)  # the upper body: L1..L5, the disc below it (L5-S1 at the bottom)
    upper, lower = bodies[index], bodies[index + 1]
    before = (upper.corners_mm(), lower.corners_mm())
    bottom = np.array(upper.point(0.0, 0.5 * upper.posterior_height_mm))
    top = np.array(lower.point(0.0, -0.5 * lower.posterior_height_mm))
    gap = float(np.linalg.norm(top - bottom))
    grow = 0.5 * gap * (1.0 - float(rng.uniform(0.2, 0.4)))
    bodies[index] = _grown(upper, grow, downwards=True)
    bodies[index + 1] = _grown(lower, grow, downwards=False)
    points = np.array([before[0]["anterior_inferior"], before[0]["posterior_inferior"],
                       before[1]["anterior_superior"], before[1]["posterior_superior"]])
    box = (*(points.min(0) - _MARGIN_MM - 1.0), *(points.max(0) + _MARGIN_MM + 1.0))
    return {"label": "disc space narrowing", "level": f"{upper.name}-{lower.name}", "box_mm": box}


def _grown(vertebra: VertebralBody, grow: float, *, downwards: bool) -> VertebralBody:
    """The body ``grow`` mm taller, its far endplate where it was."""
    sign = 1.0 if downwards else -1.0
    return dataclasses.replace(
        vertebra,
        centre_xy_mm=vertebra.point(0.0, sign * 0.5 * grow),
        posterior_height_mm=vertebra.posterior_height_mm + grow,
        anterior_height_mm=vertebra.anterior_height_mm + grow,
    )


def _surgical_implant(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 2, first=1, last=4)
    boxes, heads = [], []
    for vertebra in bodies[index : index + 2]:
        half = 0.5 * vertebra.depth_mm
        entry = vertebra.point(-half - 14.0, -0.12 * vertebra.posterior_height_mm)
        tip = vertebra.point(float(rng.uniform(0.1, 0.3)) * vertebra.depth_mm, float(rng.uniform(-0.1, 0.1))
                             * vertebra.posterior_height_mm)
        axis = np.subtract(tip, entry)
        length = float(np.hypot(*axis))
        screw = Ellipsoid(tuple(np.add(entry, tip) / 2), (0.5 * length, 3.0), float(np.arctan2(axis[1], axis[0])),
                          4.0, 0.3, 0.0)
        head = Ellipsoid(tuple(entry), (5.0, 4.0), float(np.arctan2(axis[1], axis[0])), 6.0, 0.3, 0.0)
        inserts.extend((Insert(screw, _METAL_EXCESS), Insert(head, _METAL_EXCESS)))
        boxes.extend((_ellipse_box(screw), _ellipse_box(head)))
        heads.append(np.array(entry))
    axis = heads[1] - heads[0]
    rod = Ellipsoid(tuple((heads[0] + heads[1]) / 2), (0.5 * float(np.hypot(*axis)) + 6.0, 2.8),
                    float(np.arctan2(axis[1], axis[0])), 3.0, 0.3, 0.0)
    inserts.append(Insert(rod, _METAL_EXCESS))
    boxes.append(_ellipse_box(rod))
    names = f"{bodies[index].name}-{bodies[index + 1].name}"
    return {"label": "surgical implant", "level": names, "box_mm": _union(*boxes)}


def _foraminal_stenosis(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 1)
    vertebra = bodies[index]
    half = 0.5 * vertebra.depth_mm
    size = vertebra.depth_mm / 34.0
    # The inferior facet pushed forwards and enlarged into the foramen below the pedicle.
    facet = Ellipsoid(
        vertebra.point(-half - float(rng.uniform(12.0, 14.0)), 0.5 * vertebra.posterior_height_mm + 1.0),
        (float(rng.uniform(8.0, 10.0)) * size, float(rng.uniform(6.5, 8.0)) * size),
        float(np.arctan2(vertebra.caudal[1], vertebra.caudal[0])), 9.0, 1.6, 0.9 * MU_CORTEX_EXCESS,
    )
    corner = vertebra.corners_mm()["posterior_inferior"]
    posterior = (-vertebra.anterior[0], -vertebra.anterior[1])
    spur = _spur(corner, _mix(posterior, vertebra.caudal, 0.3), float(rng.uniform(6.0, 8.0)) * size,
                 float(rng.uniform(3.0, 4.0)) * size, 10.0)
    parts.extend((facet, spur))
    following = _NAMES[index + 1]
    return {"label": "foraminal stenosis", "level": f"{vertebra.name}-{following}",
            "box_mm": _union(_ellipse_box(facet), _ellipse_box(spur))}


def _spondylolisthesis(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 1, first=2)
    vertebra = bodies[index]
    slip = float(rng.uniform(0.15, 0.35)) * vertebra.depth_mm
    moved = dataclasses.replace(vertebra, centre_xy_mm=vertebra.point(slip, 0.0))
    bodies[index] = moved
    return {"label": "spondylolisthesis", "level": vertebra.name, "box_mm": _union(_body_box(vertebra),
                                                                                   _body_box(moved))}


def _vertebral_collapse(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 1)
    vertebra = bodies[index]
    height = float(rng.uniform(0.35, 0.55)) * vertebra.posterior_height_mm
    bodies[index] = dataclasses.replace(
        vertebra,
        posterior_height_mm=height,
        anterior_height_mm=height * float(rng.uniform(0.85, 1.0)),
        endplate_concavity_mm=vertebra.endplate_concavity_mm + 0.5,
        impaction=float(rng.uniform(0.3, 0.5)),
    )
    return {"label": "vertebral collapse", "level": vertebra.name, "box_mm": _body_box(vertebra)}


def _other_lesions(rng, bodies, taken, parts, inserts) -> dict:
    index = _free(rng, taken, 1)
    vertebra = bodies[index]
    size = vertebra.depth_mm / 34.0
    centre = vertebra.point(float(rng.uniform(-0.15, 0.15)) * vertebra.depth_mm,
                            float(rng.uniform(-0.12, 0.12)) * vertebra.posterior_height_mm)
    semi = (float(rng.uniform(5.0, 8.0)) * size, float(rng.uniform(4.5, 7.0)) * size)
    angle = float(rng.uniform(0.0, np.pi))
    if rng.random() < 0.5:
        # Lytic: the cancellous bone across most of the body's width is gone.
        focus = Ellipsoid(centre, semi, angle, 0.4 * vertebra.width_mm, 0.3, 0.0)
        inserts.append(Insert(focus, -1.1 * vertebra.trabecular_excess))
    else:
        focus = Ellipsoid(centre, semi, angle, float(rng.uniform(6.0, 10.0)), 0.3, 0.0)
        inserts.append(Insert(focus, 0.7 * MU_CORTEX_EXCESS))
    return {"label": "other lesions", "level": vertebra.name, "box_mm": _ellipse_box(focus)}


_DRAWERS = {
    "osteophytes": _osteophytes,
    "disc space narrowing": _disc_space_narrowing,
    "surgical implant": _surgical_implant,
    "foraminal stenosis": _foraminal_stenosis,
    "spondylolisthesis": _spondylolisthesis,
    "vertebral collapse": _vertebral_collapse,
    "other lesions": _other_lesions,
}


def render_lesion_scene(scene: LesionScene, grid: Grid, texture_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Total anatomy line integral (float32, reduced grid, image orientation) and a bone mask (bool)."""
    total, bone = render_spine(scene.spine, grid, texture_rng)
    if not scene.inserts:
        return total, bone
    added = np.zeros(grid.shape, dtype=np.float32)
    for insert in scene.inserts:
        window = insert.shape.window(grid)
        if window is not None:
            added[window] += insert.shape.path_mm(sub_grid(grid, window)) * np.float32(insert.excess_per_mm)
    if not scene.spine.facing_left:
        added = np.ascontiguousarray(added[:, ::-1])
    total = np.maximum(total + added, 0.0)
    return total, bone | (added > 0.15)


# -- the bundled example ------------------------------------------------------------------

EXAMPLES_GROUND_TRUTH = "lesions_ground_truth.json"
# (file name, seed, findings, fixed arguments, transfer syntax UID): written at the dose and
# bit depth of the other spine examples, JPEG-LS lossless.
EXAMPLES = (
    (
        "lumbar_spine_lesions.dcm",
        1,
        ("disc space narrowing", "foraminal stenosis", "spondylolisthesis"),
        {"bits_stored": 10, "photometric": "MONOCHROME2", "detected_quanta": 6000.0, "rows": 2400, "columns": 2000},
        "1.2.840.10008.1.2.4.80",
    ),
)


def write_examples(out_dir: str | Path = "examples/spine") -> list[Path]:
    """Write the spine lesion examples and ``lesions_ground_truth.json`` beside them (the
    lumbar spine examples keep ``ground_truth.json``). Deterministic; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, items = [], []
    for name, seed, findings, arguments, syntax in EXAMPLES:
        phantom = spine_lesion_radiograph(seed, findings, **arguments)
        paths.append(write_dicom(phantom, out / name, transfer_syntax=syntax))
        items.append({"file": name, "transfer_syntax_uid": syntax, **phantom.ground_truth()})
    partial = out / f".{EXAMPLES_GROUND_TRUTH}.partial"
    partial.write_text(json.dumps({"generator": "radedge.export.phantoms.spine_lesions", "items": items}, indent=1) + "\n")
    os.replace(partial, out / EXAMPLES_GROUND_TRUTH)
    return paths
