"""Axial CT slices through a vertebra: normal, blastic, lytic or mixed metastatic bone.

One slice of a spine-targeted reconstruction (512 x 512, display field of view 165-215 mm)
through a thoracolumbar vertebra: the vertebral body (cortical shell around cancellous
bone with a trabecular texture and a basivertebral venous channel), the spinal canal
(CSF around the cord) in its posterior arch (pedicles, laminae, transverse and spinous
processes), psoas and paraspinal muscles, aorta and IVC, retroperitoneal and
subcutaneous fat, bowel with gas, the body outline and air. Metastases sit in the
vertebral body: blastic ones are dense sclerotic islands (trabecular bone + 250-900 HU),
lytic ones replace the bone by soft tissue (0-70 HU) and may break the cortex, a mixed
slice has one of each.

Values are Hounsfield units rendered at full resolution, blurred by the scanner's point
spread function, with noise that has CT's texture (band-pass, correlated over a few
pixels), then stored as signed 16-bit values ``HU + 1024`` (Rescale Intercept -1024, Slope
1); the corners outside the reconstruction circle hold the Pixel Padding Value -2000 as
GE scanners write it. Everything is deterministic in the seed.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ._primitives import smooth_noise, smoothstep

QUALITY_LABELS = ("normal", "blastic", "lytic", "mixed")
RESCALE_INTERCEPT = -1024.0
RESCALE_SLOPE = 1.0
PIXEL_PADDING_VALUE = -2000  # stored value outside the reconstruction circle
BONE_WINDOW = (400.0, 1800.0)  # (center, width) in HU
SOFT_TISSUE_WINDOW = (40.0, 400.0)
#: Tissue codes of ``CTVertebraSlice.tissue``.
TISSUES = {
    "outside": 0, "air": 1, "fat": 2, "soft_tissue": 3, "muscle": 4, "vessel": 5, "canal": 6,
    "cortical": 7, "trabecular": 8, "posterior_elements": 9, "blastic": 10, "lytic": 11, "gas": 12,
}
_KIND_CODE = 3  # after long_bone (1) and lumbar_spine (2) in the SeedSequence spawn keys
_STREAMS = {"acquisition": 0, "anatomy": 1, "texture": 2, "noise": 3, "label": 4, "lesion": 5}


@dataclass
class CTVertebraSlice:
    """One synthetic axial CT slice and what is known about it exactly.

    ``stored`` (int16[rows, columns]) holds the stored values as they go into Pixel Data
    (Pixel Representation 1): ``HU - RESCALE_INTERCEPT`` inside the reconstruction circle,
    ``PIXEL_PADDING_VALUE`` outside. ``hu`` (float32[rows, columns]) is the image in HU
    before rounding. ``windows`` are (Window Center, Window Width) in HU, bone first.

    ``label`` is one of ``QUALITY_LABELS``; ``blastic_mask`` and ``lytic_mask`` (uint8,
    0/1) mark exactly the lesion pixels; ``tissue`` (uint8) the tissue code of every pixel
    (``TISSUES``, the last one painted); ``design_hu`` the mean HU drawn for each tissue
    of this slice (before texture, blur and noise); ``lesions`` describes each lesion
    (centre in pixels, x = column, y = row, radius in mm, HU).
    """

    seed: int
    stored: np.ndarray
    hu: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    label: str
    blastic_mask: np.ndarray
    lytic_mask: np.ndarray
    tissue: np.ndarray
    design_hu: dict[str, float]
    lesions: list[dict]
    noise_hu: float
    windows: list[tuple[float, float]] = field(default_factory=lambda: [BONE_WINDOW, SOFT_TISSUE_WINDOW])
    window_explanations: list[str] = field(default_factory=lambda: ["BONE", "SOFT TISSUE"])
    body_part: str = "SPINE"
    dicom_header: dict[str, Any] = field(default_factory=dict)
    kind: str = "ct_vertebra"
    bits_stored: int = 16
    photometric: str = "MONOCHROME2"
    rescale_intercept: float = RESCALE_INTERCEPT
    rescale_slope: float = RESCALE_SLOPE
    pixel_padding_value: int = PIXEL_PADDING_VALUE

    @property
    def rows(self) -> int:
        return int(self.stored.shape[0])

    @property
    def columns(self) -> int:
        return int(self.stored.shape[1])

    def ground_truth(self) -> dict:
        """JSON-serialisable ground truth (no arrays; lesion masks as pixel counts)."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "rows": self.rows,
            "columns": self.columns,
            "pixel_spacing_mm": [round(value, 4) for value in self.pixel_spacing_mm],
            "label": self.label,
            "blastic_area_px": int(self.blastic_mask.sum()),
            "lytic_area_px": int(self.lytic_mask.sum()),
            "lesions": [{key: _rounded(value) for key, value in lesion.items()} for lesion in self.lesions],
            "design_hu": {name: round(value, 1) for name, value in self.design_hu.items()},
            "noise_hu": round(self.noise_hu, 1),
            "windows": [list(window) for window in self.windows],
        }


def _rounded(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 2)
    return value


def _streams(seed: int) -> dict[str, np.random.Generator]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return {
        name: np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(_KIND_CODE, code)))
        for name, code in _STREAMS.items()
    }


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Normalised radius of an axis-aligned ellipse (< 1 inside), float32."""
    return np.sqrt(np.square((x - cx) / a) + np.square((y - cy) / b)).astype(np.float32)


def _capsule(x: np.ndarray, y: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """Distance (mm) from every point to the segment start-end, float32."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)).astype(np.float32)


def _depth_mm(mask: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Distance (mm) from each pixel inside ``mask`` to the nearest pixel outside it."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5) * np.float32(mm_per_px)


def _blob(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radius_mm: float,
          mm_per_px: float) -> np.ndarray:
    """An irregular round lesion: a soft 0..1 occupancy over ~1 mm of edge (float32)."""
    shape = (y.shape[0], x.shape[1])
    wobble = smooth_noise(rng, shape, fine_sigma_px=max(2.0, 0.4 * radius_mm / mm_per_px))
    distance = np.hypot(x - centre[0], y - centre[1]) / radius_mm + 0.18 * wobble
    return 1.0 - smoothstep(1.0 - 0.5 / radius_mm, 1.0 + 0.5 / radius_mm, distance)


def _place(rng: np.random.Generator, body_a: float, body_b: float, radius_mm: float,
           avoid: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """A lesion centre inside the vertebral body, clear of ``avoid`` (x, y, radius) lesions;
    None when 100 draws found no room."""
    for _ in range(100):
        angle = rng.uniform(0, 2 * np.pi)
        reach = np.sqrt(rng.uniform(0, 1)) * 0.62
        cx = reach * np.cos(angle) * max(body_a - radius_mm * 0.5, 1.0)
        cy = reach * np.sin(angle) * max(body_b - radius_mm * 0.5, 1.0)
        if all(np.hypot(cx - ox, cy - oy) > radius_mm + other + 2.0 for ox, oy, other in avoid):
            return float(cx), float(cy)
    return None


def ct_vertebra_slice(seed: int, label: str | None = None, *, rows: int = 512, columns: int = 512) -> CTVertebraSlice:
    """The axial CT slice of ``seed`` (``label`` None: drawn uniformly from ``QUALITY_LABELS``)."""
    if label is not None and label not in QUALITY_LABELS:
        raise ValueError(f"label must be one of {QUALITY_LABELS} or None, got {label!r}")
    rng = _streams(seed)
    drawn_label = QUALITY_LABELS[int(rng["label"].integers(len(QUALITY_LABELS)))]
    label = label or drawn_label
    acquisition, anatomy, texture, lesion_rng = rng["acquisition"], rng["anatomy"], rng["texture"], rng["lesion"]

    # Acquisition: a spine-targeted display field of view, dose-dependent noise.
    mm_per_px = float(acquisition.uniform(0.32, 0.42))
    noise_hu = float(acquisition.uniform(12.0, 30.0))
    psf_sigma_mm = float(acquisition.uniform(0.35, 0.6))
    centre_offset = acquisition.uniform(-6.0, 6.0, size=2)
    # mm coordinates, origin at the vertebral body's centre, y towards posterior (down).
    x = ((np.arange(columns, dtype=np.float32) - (columns - 1) / 2) * mm_per_px + centre_offset[0])[None, :]
    y = ((np.arange(rows, dtype=np.float32) - (rows - 1) / 2) * mm_per_px + 12.0 + centre_offset[1])[:, None]
    shape = (rows, columns)
    hu = np.full(shape, -1000.0, dtype=np.float32)
    tissue = np.full(shape, TISSUES["air"], dtype=np.uint8)
    design: dict[str, float] = {"air": -1000.0}

    def paint(where: np.ndarray, value: np.ndarray | float, name: str) -> None:
        hu[where] = value[where] if isinstance(value, np.ndarray) else value
        tissue[where] = TISSUES[name]

    # Body outline: subcutaneous fat around the abdominal wall and viscera.
    body_a, body_b = float(anatomy.uniform(19.0, 25.0)), float(anatomy.uniform(14.0, 18.0))
    canal_a, canal_b = float(anatomy.uniform(8.0, 11.0)), float(anatomy.uniform(6.5, 9.0))
    canal_y = body_b + canal_b - 1.0
    posterior_skin = canal_y + float(anatomy.uniform(65.0, 95.0))
    outline_a, outline_b = float(anatomy.uniform(130.0, 175.0)), float(anatomy.uniform(95.0, 125.0))
    outline_y = posterior_skin - outline_b
    fat_mm = float(anatomy.uniform(8.0, 28.0))
    design["fat"] = float(anatomy.uniform(-115.0, -85.0))
    design["soft_tissue"] = float(anatomy.uniform(25.0, 45.0))
    design["muscle"] = float(anatomy.uniform(45.0, 60.0))
    fat_texture = smooth_noise(texture, shape, fine_sigma_px=3.0 / mm_per_px)
    outline = _ellipse(x, y, 0.0, outline_y, outline_a, outline_b)
    paint(outline < 1.0, design["fat"] + 8.0 * fat_texture, "fat")
    wall = _ellipse(x, y, 0.0, outline_y, outline_a - fat_mm, outline_b - fat_mm)
    paint(wall < 1.0, np.float32(design["muscle"]), "muscle")
    viscera = _ellipse(x, y, 0.0, outline_y, outline_a - fat_mm - 9.0, outline_b - fat_mm - 9.0)
    # Viscera: soft tissue marbled with mesenteric fat, a few bowel gas pockets.
    marbling = smoothstep(0.2, 0.9, smooth_noise(texture, shape, fine_sigma_px=6.0 / mm_per_px))
    visceral = design["soft_tissue"] + marbling * (design["fat"] - design["soft_tissue"])
    paint(viscera < 1.0, visceral, "soft_tissue")
    for _ in range(int(anatomy.integers(1, 5))):
        gx, gy = anatomy.uniform(-70, 70), anatomy.uniform(-body_b - 90, -body_b - 35)
        gas = _ellipse(x, y, gx, gy, anatomy.uniform(4, 14), anatomy.uniform(3, 10)) < 1.0
        paint(gas & (viscera < 0.95), np.float32(-950.0), "gas")

    # Retroperitoneum: fat around the spine, psoas, paraspinal muscles, aorta and IVC.
    paint(_ellipse(x, y, 0.0, canal_y * 0.5, body_a + 32.0, body_b + 30.0) < 1.0, design["fat"] + 8.0 * fat_texture,
          "fat")
    psoas_r = float(anatomy.uniform(9.0, 16.0))
    for side in (-1.0, 1.0):
        paint(_ellipse(x, y, side * (body_a + psoas_r * 0.6), -2.0, psoas_r, psoas_r * 1.1) < 1.0,
              np.float32(design["muscle"]), "muscle")
        paint(_ellipse(x, y, side * (canal_a + 16.0), canal_y + canal_b + 22.0, 17.0, 24.0) < 1.0,
              np.float32(design["muscle"]), "muscle")
    design["vessel"] = float(anatomy.uniform(35.0, 48.0))
    aorta_r = float(anatomy.uniform(9.0, 13.0))
    paint(_ellipse(x, y, 8.0 + aorta_r * 0.4, -body_b - aorta_r - 2.0, aorta_r, aorta_r) < 1.0,
          np.float32(design["vessel"]), "vessel")
    paint(_ellipse(x, y, -(body_a + 6.0), -body_b - 10.0, 11.0, 7.5) < 1.0, np.float32(design["vessel"]), "vessel")

    # Bone: the body (kidney-shaped: the canal indents its posterior wall) and the arch.
    design["cortical"] = float(anatomy.uniform(800.0, 1200.0))
    design["trabecular"] = float(anatomy.uniform(140.0, 300.0))
    design["posterior_elements"] = float(design["trabecular"] + anatomy.uniform(60.0, 160.0))
    shell_mm = float(anatomy.uniform(0.9, 1.6))
    body = (_ellipse(x, y, 0.0, 0.0, body_a, body_b) < 1.0) & (
        _ellipse(x, y, 0.0, canal_y + 1.5, canal_a * 0.9, canal_b + 1.0) >= 1.0
    )
    arch_mm = float(anatomy.uniform(4.0, 6.0))
    canal_shape = _ellipse(x, y, 0.0, canal_y, canal_a, canal_b)
    arch = (_ellipse(x, y, 0.0, canal_y, canal_a + arch_mm, canal_b + arch_mm) < 1.0) & (canal_shape >= 1.0)
    spinous_end = (float(anatomy.uniform(-4.0, 4.0)), canal_y + canal_b + float(anatomy.uniform(28.0, 42.0)))
    arch |= _capsule(x, y, (0.0, canal_y + canal_b), spinous_end) < float(anatomy.uniform(2.5, 3.5))
    transverse = float(anatomy.uniform(18.0, 30.0))
    for side in (-1.0, 1.0):
        arch |= _capsule(x, y, (side * (canal_a + 2.0), canal_y - 1.0),
                         (side * (canal_a + 2.0 + transverse), canal_y - 4.0)) < 3.0
    arch &= ~body
    trabecular_texture = smooth_noise(texture, shape, fine_sigma_px=0.35 / mm_per_px, coarse_sigma_px=2.5 / mm_per_px)
    trabecular_hu = design["trabecular"] + 55.0 * trabecular_texture
    for part, inner_hu, inner_name in ((body, trabecular_hu, "trabecular"),
                                       (arch, design["posterior_elements"] + 55.0 * trabecular_texture,
                                        "posterior_elements")):
        depth = _depth_mm(part, mm_per_px)
        paint(part, np.float32(design["cortical"]), "cortical")
        paint(part & (depth > shell_mm), inner_hu, inner_name)
    body_inside = body & (_depth_mm(body, mm_per_px) > shell_mm)
    # The basivertebral vein: a low-density channel entering the posterior wall, a normal
    # finding a lytic detector must not mistake for a lesion.
    vein = _capsule(x, y, (0.0, body_b - 1.0), (0.0, body_b - float(anatomy.uniform(4.0, 8.0)))) < 0.9
    paint(vein & body, np.float32(design["soft_tissue"] + 40.0), "soft_tissue")
    design["canal"] = float(anatomy.uniform(5.0, 15.0))
    paint(canal_shape < 1.0, np.float32(design["canal"]), "canal")
    paint(_ellipse(x, y, 0.0, canal_y - 0.5, canal_a * 0.45, canal_b * 0.5) < 1.0, np.float32(35.0), "canal")

    # Metastases in the cancellous bone of the body.
    blastic_mask = np.zeros(shape, dtype=np.uint8)
    lytic_mask = np.zeros(shape, dtype=np.uint8)
    lesions: list[dict] = []
    placed: list[tuple[float, float, float]] = []
    kinds = {"normal": (), "blastic": ("blastic",), "lytic": ("lytic",), "mixed": ("lytic", "blastic")}[label]
    for kind in kinds:
        if kind == "blastic":
            radius = float(lesion_rng.uniform(2.5, 8.0))
            contrast = float(lesion_rng.uniform(250.0, 900.0))
            value = design["trabecular"] + contrast
        else:
            radius = float(lesion_rng.uniform(3.5, 10.0))
            value = float(lesion_rng.uniform(0.0, 70.0))
        radius = min(radius, (0.4 if label == "mixed" else 0.55) * min(body_a, body_b))
        centre = _place(lesion_rng, body_a, body_b, radius, placed)
        while centre is None:  # no room beside the first lesion of a mixed slice: a smaller one
            radius *= 0.85
            centre = _place(lesion_rng, body_a, body_b, radius, placed)
        cx, cy = centre
        placed.append((cx, cy, radius))
        occupancy = _blob(lesion_rng, x, y, (cx, cy), radius, mm_per_px)
        # Lytic lesions may break through the cortex, blastic ones stay inside the shell.
        region = body if kind == "lytic" else body_inside
        inside = (occupancy >= 0.5) & region
        lesion_texture = smooth_noise(lesion_rng, shape, fine_sigma_px=0.6 / mm_per_px)
        lesion_hu = value + (70.0 if kind == "blastic" else 8.0) * lesion_texture
        hu[region] += occupancy[region] * (lesion_hu[region] - hu[region])
        tissue[inside] = TISSUES[kind]
        (blastic_mask if kind == "blastic" else lytic_mask)[inside] = 1
        design[kind] = value
        centre_xy_px = [(cx - float(x[0, 0])) / mm_per_px, (cy - float(y[0, 0])) / mm_per_px]
        lesions.append({"kind": kind, "centre_xy_px": centre_xy_px, "radius_mm": radius,
                        "hu": value, "area_px": int(inside.sum())})

    # The scanner: point spread, CT-textured noise, the reconstruction circle.
    hu = cv2.GaussianBlur(hu, (0, 0), sigmaX=psf_sigma_mm / mm_per_px, borderType=cv2.BORDER_REPLICATE)
    noise = smooth_noise(rng["noise"], shape, fine_sigma_px=0.8, coarse_sigma_px=4.0)
    hu += noise_hu * noise
    circle = np.hypot(*np.meshgrid(np.arange(columns) - (columns - 1) / 2, np.arange(rows) - (rows - 1) / 2))
    outside = circle > min(rows, columns) / 2
    stored = np.clip(np.rint(hu - RESCALE_INTERCEPT), 0, 4095).astype(np.int16)
    stored[outside] = PIXEL_PADDING_VALUE
    tissue[outside] = TISSUES["outside"]
    blastic_mask[outside] = 0
    lytic_mask[outside] = 0
    header = _draw_header(acquisition, seed, mm_per_px, rows, columns, centre_offset)
    return CTVertebraSlice(
        seed=int(seed), stored=stored, hu=hu, pixel_spacing_mm=(mm_per_px, mm_per_px), label=label,
        blastic_mask=blastic_mask, lytic_mask=lytic_mask, tissue=tissue, design_hu=design, lesions=lesions,
        noise_hu=noise_hu, dicom_header=header,
    )


def _draw_header(rng: np.random.Generator, seed: int, mm_per_px: float, rows: int, columns: int,
                 centre_offset: np.ndarray) -> dict[str, Any]:
    """Synthetic identity, dates and CT acquisition attributes (DICOM keywords -> values)."""
    study_day = _dt.date(2019, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 7 * 365)))
    age_years = int(rng.integers(45, 86))
    birth = study_day - _dt.timedelta(days=int(age_years * 365.25 + rng.integers(0, 365)))
    seconds = int(rng.integers(7 * 3600, 19 * 3600))
    slice_location = float(np.round(rng.uniform(-420.0, -180.0), 1))
    # Image Position (Patient): the centre of the top-left pixel in LPS mm.
    left = -(columns - 1) / 2 * mm_per_px + float(centre_offset[0])
    top = -(rows - 1) / 2 * mm_per_px + 12.0 + float(centre_offset[1])
    return {
        "PatientName": f"PHANTOM^CTSPINE^{seed:04d}",
        "PatientID": f"PH-CT-{seed:06d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": str(rng.choice(("F", "M"))),
        "PatientAge": f"{age_years:03d}Y",
        "StudyDate": study_day.strftime("%Y%m%d"),
        "StudyTime": f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}",
        "AccessionNumber": f"A3{seed:08d}",
        "StudyID": f"{seed % 100000:05d}",
        "KVP": float(rng.choice((100.0, 120.0, 120.0, 140.0))),
        "XRayTubeCurrent": int(rng.integers(120, 400)),
        "SliceThickness": float(rng.choice((1.0, 1.25, 2.0, 2.5, 3.0))),
        "ConvolutionKernel": str(rng.choice(("BONE", "B60f", "YB"))),
        "SliceLocation": slice_location,
        "ImagePositionPatient": [round(left, 3), round(top, 3), slice_location],
    }
