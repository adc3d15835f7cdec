"""``Phantom``: one synthetic radiograph as stored values plus its exact ground truth."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Kind = Literal["long_bone", "lumbar_spine", "lumbar_spine_lesions"]
Photometric = Literal["MONOCHROME1", "MONOCHROME2"]
LABELS = ("no_tumour", "benign", "malignant")
# Changes whenever the same seed would give different pixels or ground truth, so caches
# keyed on it (prepared training sets) are never stale.
GENERATOR_VERSION = "1"


@dataclass
class Phantom:
    """A synthetic digital radiograph and what is known about it exactly.

    ``stored`` (uint16[rows, columns]) holds the stored values exactly as they go into
    Pixel Data; every value is below ``2**bits_stored``. For MONOCHROME1 they are already
    inverted (bone dark), i.e. ``stored = 2**bits_stored - 1 - monochrome2_values``.

    ``windows`` are (Window Center, Window Width) pairs in stored-value units as written
    (PS3.3 C.11.2.1.2), with ``window_explanations`` alongside; ``voi_function`` is the
    VOI LUT Function ("LINEAR" or "SIGMOID").

    Long bones: ``lesion_mask`` (uint8[rows, columns], 0/1) marks exactly the pixels the
    lesion changed (bone lesion plus, for malignant lesions, soft-tissue mass and
    periosteal reaction); all zero for ``label == "no_tumour"``. ``lesion`` describes
    it (pixel coordinates, x = column, y = row, origin at the centre of the top-left
    pixel). Lumbar spines: ``vertebrae`` lists L1..L5 top to bottom; spines with findings
    list them in ``findings`` (label, level, ``box_xyxy_px``), an empty list when normal.

    ``dicom_header`` holds the remaining DICOM attributes by keyword (synthetic patient
    identity, dates, exposure, view, optional Pixel Spacing), all derived from the seed.
    """

    kind: Kind
    seed: int
    stored: np.ndarray
    bits_stored: int
    photometric: Photometric
    imager_pixel_spacing_mm: tuple[float, float]
    windows: list[tuple[float, float]]
    voi_function: str
    body_part: str
    lesion_mask: np.ndarray | None = None
    label: str | None = None
    lesion: dict | None = None
    vertebrae: list[dict] | None = None
    findings: list[dict] | None = None
    window_explanations: list[str] = field(default_factory=list)
    magnification: float = 1.0
    dicom_header: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.stored.shape[0])

    @property
    def columns(self) -> int:
        return int(self.stored.shape[1])

    @property
    def max_stored(self) -> int:
        return (1 << self.bits_stored) - 1

    @property
    def patient_pixel_spacing_mm(self) -> tuple[float, float]:
        """Pixel size in the plane of the anatomy: Imager Pixel Spacing / magnification (mm)."""
        return (
            self.imager_pixel_spacing_mm[0] / self.magnification,
            self.imager_pixel_spacing_mm[1] / self.magnification,
        )

    def monochrome2(self) -> np.ndarray:
        """uint16[rows, columns]: the stored values as MONOCHROME2 (higher = more attenuation)."""
        if self.photometric == "MONOCHROME1":
            return (self.max_stored - self.stored.astype(np.int32)).astype(np.uint16)
        return self.stored

    def ground_truth(self) -> dict:
        """JSON-serialisable ground truth: no arrays; the mask as bounding box and pixel count.

        ``lesion["bbox_xywh_px"]`` is (x, y, width, height) of the mask's bounding box in
        pixels, ``lesion["area_px"]`` the number of mask pixels. Vertebra entries carry
        centres, corners and heights in pixels and heights in mm (patient plane).
        """
        truth: dict[str, Any] = {
            "kind": self.kind,
            "seed": self.seed,
            "rows": self.rows,
            "columns": self.columns,
            "bits_stored": self.bits_stored,
            "photometric": self.photometric,
            "imager_pixel_spacing_mm": list(self.imager_pixel_spacing_mm),
            "magnification": self.magnification,
            "body_part": self.body_part,
            "view_position": self.dicom_header.get("ViewPosition"),
            "windows": [list(window) for window in self.windows],
            "voi_function": self.voi_function,
        }
        if self.kind == "long_bone":
            truth["label"] = self.label
            truth["lesion"] = _jsonable(self.lesion) if self.lesion is not None else None
        if self.vertebrae is not None:
            truth["vertebrae"] = _jsonable(self.vertebrae)
        if self.findings is not None:
            truth["findings"] = _jsonable(self.findings)
        return truth

    def cropped(self, top: int, left: int, rows: int, columns: int) -> "Phantom":
        """The same phantom cut to ``stored[top:top+rows, left:left+columns]``.

        Pixel coordinates in the ground truth are shifted accordingly; the lesion's
        bounding box and area are recomputed from the cropped mask (a lesion partly
        outside keeps only its visible part). Vertebra coordinates and finding boxes are
        shifted as they are.
        """
        if top < 0 or left < 0 or top + rows > self.rows or left + columns > self.columns:
            raise ValueError(
                f"crop [{top}:{top + rows}, {left}:{left + columns}] is outside the "
                f"{self.rows} x {self.columns} image; choose a window inside it"
            )
        window = (slice(top, top + rows), slice(left, left + columns))
        shift = np.array([left, top], dtype=np.float64)
        mask = None if self.lesion_mask is None else np.ascontiguousarray(self.lesion_mask[window])
        lesion = None
        if self.lesion is not None:
            lesion = dict(self.lesion)
            if "centre_xy_px" in lesion:
                lesion["centre_xy_px"] = list(np.asarray(lesion["centre_xy_px"]) - shift)
            if mask is not None:
                lesion.update(mask_extent(mask))
        vertebrae = None
        if self.vertebrae is not None:
            vertebrae = [_shift_points(level, shift) for level in self.vertebrae]
        findings = None if self.findings is None else [_shift_points(item, shift) for item in self.findings]
        return dataclasses.replace(
            self,
            stored=np.ascontiguousarray(self.stored[window]),
            lesion_mask=mask,
            lesion=lesion,
            vertebrae=vertebrae,
            findings=findings,
            dicom_header=dict(self.dicom_header),
        )


def mask_extent(mask: np.ndarray) -> dict:
    """``{"bbox_xywh_px": [x, y, w, h] | None, "area_px": int}`` of a 0/1 mask (uint8[rows, cols])."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return {"bbox_xywh_px": None, "area_px": 0}
    cols = np.flatnonzero(mask.any(axis=0))
    return {
        "bbox_xywh_px": [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)],
        "area_px": int(np.count_nonzero(mask)),
    }


def _shift_points(value: Any, shift: np.ndarray) -> Any:
    """Subtract ``shift`` (x, y) from every value stored under a key ending in ``_xy_px``, and
    from both corners of every box stored under a key ending in ``_xyxy_px``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith("_xyxy_px"):
                out[key] = list(np.asarray(item) - np.tile(shift, 2))
            elif key.endswith("_xy_px"):
                if isinstance(item, dict):
                    out[key] = {name: list(np.asarray(point) - shift) for name, point in item.items()}
                else:
                    out[key] = list(np.asarray(item) - shift)
            else:
                out[key] = _shift_points(item, shift)
        return out
    if isinstance(value, list):
        return [_shift_points(item, shift) for item in value]
    return value


def _jsonable(value: Any) -> Any:
    """Plain Python types (floats rounded to 0.01 px / 1e-4) for json.dump."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(item) for item in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4)
    return value
