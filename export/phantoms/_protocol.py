"""What the technologist and the modality chose: image size, detector, exposure, processing, header.

Every phantom draws these from its own random stream (``acquisition``), before and
independently of the anatomy and the lesion, so overriding the label or the lesion
never changes them and the same seed always gives the same protocol.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._acquisition import Collimation, Detector, Response, expose

# Independent random streams of one phantom; the numbers are part of the seed's meaning
# and must not change, or every phantom changes.
STREAMS = {"acquisition": 0, "anatomy": 1, "texture": 2, "noise": 3, "label": 4, "lesion": 5}
_KIND_CODES = {"long_bone": 1, "lumbar_spine": 2, "lumbar_spine_lesions": 3}

# Detector pixel pitches (mm) of flat-panel detectors on the market.
_DETECTOR_PITCHES_MM = (0.1, 0.125, 0.139, 0.14, 0.143, 0.148, 0.15, 0.16, 0.175, 0.2)
_BITS_STORED_CHOICES = (10, 12, 12, 12, 14, 15, 16)


def streams(seed: int, kind: str) -> dict[str, np.random.Generator]:
    """One independent ``numpy`` Generator per named stream of a phantom."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return {
        name: np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(_KIND_CODES[kind], code)))
        for name, code in STREAMS.items()
    }


@dataclass(frozen=True)
class Protocol:
    """Acquisition and processing choices of one phantom (see module docstring).

    ``imager_pixel_spacing_mm`` is the detector pitch; ``magnification`` the ratio of
    source-detector to source-object distance, so one pixel covers
    ``mm_per_px = imager_pixel_spacing_mm / magnification`` of anatomy.
    ``detected_quanta`` is the number of detected quanta per pixel at the middle of the
    characteristic curve: it sets the noise level.
    """

    rows: int
    columns: int
    imager_pixel_spacing_mm: float
    magnification: float
    bits_stored: int
    photometric: str
    detector: Detector
    collimation: Collimation
    detected_quanta: float
    curve_position: float  # where on [0, 1] of the anatomy's density range the curve's middle sits
    curve_steepness: float  # anatomy density range / logistic scale
    curve_low: float  # fraction of max_stored at the toe
    curve_high: float  # fraction of max_stored at the shoulder
    equalisation_strength: float  # fraction of the local mean log signal removed
    equalisation_sigma_mm: float  # size of the "local" in that mean
    voi_function: str
    second_window: bool
    writes_pixel_spacing: bool
    writes_magnification: bool
    age_years: int
    header: dict[str, Any]

    @property
    def mm_per_px(self) -> float:
        return self.imager_pixel_spacing_mm / self.magnification

    @property
    def max_stored(self) -> int:
        return (1 << self.bits_stored) - 1


def draw_protocol(
    rng: np.random.Generator,
    kind: str,
    seed: int,
    *,
    rows: int | None,
    columns: int | None,
    bits_stored: int | None,
    photometric: str | None,
    detected_quanta: float | None,
) -> Protocol:
    """Draw a protocol; explicit arguments override the drawn values (the draws still happen)."""
    spine = kind == "lumbar_spine"
    drawn_rows = int(rng.integers(2400, 3001)) if spine else int(rng.integers(2200, 3001))
    drawn_columns = int(rng.integers(2000, min(drawn_rows, 2600) + 1))
    # A lateral lumbar spine needs a 35 x 43 cm class detector: no 0.1 mm small-field panels.
    pitch = float(rng.choice(_DETECTOR_PITCHES_MM[2:] if spine else _DETECTOR_PITCHES_MM))
    magnification = float(rng.uniform(1.10, 1.25) if spine else rng.uniform(1.02, 1.12))
    drawn_bits = int(rng.choice(_BITS_STORED_CHOICES))
    drawn_photometric = "MONOCHROME1" if rng.random() < 0.3 else "MONOCHROME2"
    # Lateral lumbar spines are taken through 30+ cm of tissue: far fewer quanta arrive.
    drawn_quanta = (
        float(np.exp(rng.uniform(np.log(600), np.log(2500))))
        if spine
        else float(np.exp(rng.uniform(np.log(1200), np.log(8000))))
    )
    detector = Detector(
        quanta_reference=1.0,  # set once the anatomy is known (see calibrate)
        electronic_noise_quanta=float(rng.uniform(1.5, 6.0)),
        noise_blur_px=float(rng.uniform(0.55, 0.85)),
        heel_gradient=float(rng.uniform(-0.22, 0.22)),
        heel_along_rows=bool(rng.random() < 0.8),
        falloff=float(rng.uniform(0.02, 0.10)),
    )
    rows = drawn_rows if rows is None else _checked_size("rows", rows)
    columns = drawn_columns if columns is None else _checked_size("columns", columns)
    bits = drawn_bits if bits_stored is None else int(bits_stored)
    if not 8 <= bits <= 16:
        raise ValueError(f"bits_stored must be in 8..16 for 16-bit Pixel Data, got {bits_stored!r}")
    photometric = drawn_photometric if photometric is None else photometric
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be 'MONOCHROME1' or 'MONOCHROME2', got {photometric!r}")
    collimation = _draw_collimation(rng, rows, columns, pitch / magnification)
    voi_function = "SIGMOID" if rng.random() < 0.2 else "LINEAR"
    second_window = bool(rng.random() < 0.4)
    writes_pixel_spacing = bool(rng.random() < 0.3)
    writes_magnification = bool(rng.random() < 0.4)
    header, age_years = _draw_header(rng, kind, seed, magnification)
    curve_position = float(rng.uniform(0.42, 0.58))
    curve_steepness = float(rng.uniform(4.2, 5.2))
    curve_low = float(rng.uniform(0.0, 0.04))
    curve_high = float(rng.uniform(0.93, 1.0))
    equalisation_strength = float(rng.uniform(0.45, 0.7))
    equalisation_sigma_mm = float(rng.uniform(12.0, 30.0))
    if detected_quanta is not None:
        if not detected_quanta > 0:
            raise ValueError(f"detected_quanta must be positive, got {detected_quanta!r}")
        drawn_quanta = float(detected_quanta)
    return Protocol(
        rows=rows,
        columns=columns,
        imager_pixel_spacing_mm=pitch,
        magnification=magnification,
        bits_stored=bits,
        photometric=photometric,
        detector=detector,
        collimation=collimation,
        detected_quanta=drawn_quanta,
        curve_position=curve_position,
        curve_steepness=curve_steepness,
        curve_low=curve_low,
        curve_high=curve_high,
        equalisation_strength=equalisation_strength,
        equalisation_sigma_mm=equalisation_sigma_mm,
        voi_function=voi_function,
        second_window=second_window,
        writes_pixel_spacing=writes_pixel_spacing,
        writes_magnification=writes_magnification,
        age_years=age_years,
        header=header,
    )


def _checked_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 64 <= value <= 8192:
        raise ValueError(f"{name} must be an integer in 64..8192 pixels, got {value!r}")
    return int(value)


def _draw_collimation(rng: np.random.Generator, rows: int, columns: int, mm_per_px: float) -> Collimation:
    """A field that leaves 0-11 % of each side shuttered; some sides are fully open."""
    margins = [float(rng.uniform(0.015, 0.11)) if rng.random() < 0.75 else -0.05 for _ in range(4)]
    left, right, top, bottom = margins
    x0, x1 = left * columns, (1.0 - right) * columns
    y0, y1 = top * rows, (1.0 - bottom) * rows
    angle = float(np.deg2rad(rng.uniform(-3.0, 3.0))) if rng.random() < 0.6 else 0.0
    return Collimation(
        centre_px=((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5),
        half_size_px=((x1 - x0) / 2, (y1 - y0) / 2),
        angle_rad=angle,
        penumbra_px=float(rng.uniform(1.0, 3.0)) / mm_per_px,
        shutter_attenuation=float(rng.uniform(2.6, 3.8)),
        electronic_fill=bool(rng.random() < 0.25),
    )


def _draw_header(rng: np.random.Generator, kind: str, seed: int, magnification: float) -> tuple[dict[str, Any], int]:
    """Synthetic patient identity, study dates and exposure factors (DICOM keywords -> values), and the age in years."""
    spine = kind == "lumbar_spine"
    tag = "LONGBONE" if kind == "long_bone" else "LSPINE"
    study_day = _dt.date(2019, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 7 * 365)))
    age_years = int(rng.integers(50, 91)) if spine else int(rng.integers(9, 86))
    birth = study_day - _dt.timedelta(days=int(age_years * 365.25 + rng.integers(0, 365)))
    seconds = int(rng.integers(7 * 3600, 19 * 3600))
    study_time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    source_to_detector = float(rng.choice((1000.0, 1100.0, 1150.0, 1800.0) if not spine else (1000.0, 1150.0, 1200.0)))
    kvp = float(rng.integers(85, 101) if spine else rng.integers(55, 71))
    return {
        "PatientName": f"PHANTOM^{tag}^{seed:04d}",
        "PatientID": f"PH-{tag[:2]}-{seed:06d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": str(rng.choice(("F", "M"))),
        "PatientAge": f"{age_years:03d}Y",
        "StudyDate": study_day.strftime("%Y%m%d"),
        "StudyTime": study_time,
        "AccessionNumber": f"A{2 if spine else 1}{seed:08d}",
        "StudyID": f"{seed % 100000:05d}",
        "KVP": kvp,
        "ExposureInuAs": int(rng.integers(20000, 120000) if spine else rng.integers(1500, 12000)),
        "DistanceSourceToDetector": source_to_detector,
        "DistanceSourceToPatient": round(source_to_detector / magnification, 1),
    }, age_years


def calibrate(protocol: Protocol, density_of_body: np.ndarray) -> tuple[Detector, Response]:
    """Fit the characteristic curve and the dose to the anatomy, as an automatic exposure control would.

    ``density_of_body`` (float32[K]) are noise-free total line integrals (anatomy + beam)
    sampled inside the patient and inside the open field. The curve's straight part
    spans their 10th..99.7th percentiles (thin tissue at the skin line falls into the
    toe, as on film); the dose is set so that ``detected_quanta`` quanta arrive at the
    curve's middle.
    """
    if density_of_body.size == 0:
        raise ValueError("no patient in the open field: the image is too small or too tightly collimated")
    low, high = np.percentile(density_of_body, [10.0, 99.7])
    span = max(float(high - low), 0.2)
    density_mid = float(low) + protocol.curve_position * span
    response = Response(
        density_mid=density_mid,
        density_scale=span / protocol.curve_steepness,
        stored_low=protocol.curve_low * protocol.max_stored,
        stored_high=protocol.curve_high * protocol.max_stored,
        max_stored=protocol.max_stored,
    )
    detector = Detector(
        quanta_reference=protocol.detected_quanta * float(np.exp(density_mid)),
        electronic_noise_quanta=protocol.detector.electronic_noise_quanta,
        noise_blur_px=protocol.detector.noise_blur_px,
        heel_gradient=protocol.detector.heel_gradient,
        heel_along_rows=protocol.detector.heel_along_rows,
        falloff=protocol.detector.falloff,
    )
    return detector, response


def windows_for(
    protocol: Protocol, detector: Detector, response: Response, density_of_body: np.ndarray, density_of_bone: np.ndarray
) -> tuple[list[tuple[float, float]], list[str]]:
    """Window Center/Width pairs (stored-value units, as written) and their explanations.

    The first window spans the 0.5..99.5th percentile of the body's noise-free stored
    values; the optional second one ("BONE") the 2..99.8th percentile of bone pixels.
    For MONOCHROME1 the centres are mirrored, because the stored values are.
    """
    zero = np.zeros(1, dtype=np.float32)

    def stored(density: np.ndarray) -> np.ndarray:
        return expose(density.astype(np.float32), np.broadcast_to(zero, density.shape), detector, response)

    body_low, body_high = np.percentile(stored(density_of_body), [0.5, 99.5])
    windows = [(float(body_low + body_high) / 2, float(body_high - body_low) * 1.1)]
    explanations = ["NORMAL"]
    if protocol.second_window and density_of_bone.size > 100:
        bone_low, bone_high = np.percentile(stored(density_of_bone), [2.0, 99.8])
        windows.append((float(bone_low + bone_high) / 2, max(float(bone_high - bone_low), 2.0)))
        explanations.append("BONE")
    rounded = []
    for center, width in windows:
        if protocol.photometric == "MONOCHROME1":
            center = protocol.max_stored - center
        rounded.append((round(center, 1), round(max(width, 2.0), 1)))
    return rounded, explanations
