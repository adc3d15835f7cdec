"""What a model says about one image: ``Prediction`` and its per-head results.

A ``Prediction`` serialises to JSON (``to_json``) and renders an overlay PNG
(``save_overlay``). Neither contains patient names, IDs or dates: the only link back to
the input is the path or label the caller gave.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._files import write_atomically
from .io.image import Image
from .preprocess import PreprocessSpec, ResizeGeometry, preprocess


@dataclass(frozen=True)
class Flag:
    """A finding raised for the technologist: ``score`` reached ``threshold`` on ``head``/``label``."""

    code: str
    title: str
    score: float
    threshold: float
    head: str
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "head": self.head,
            "label": self.label,
        }


@dataclass(frozen=True)
class ClassificationResult:
    """Class probabilities of one classification head: ``probabilities`` float32[K] over ``labels``."""

    head: str
    labels: tuple[str, ...]
    probabilities: np.ndarray

    def probability(self, label: str) -> float:
        return float(self.probabilities[self.labels.index(label)])

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "probabilities": {label: round(float(p), 6) for label, p in zip(self.labels, self.probabilities)},
            "top_label": self.top_label,
        }


@dataclass(frozen=True)
class RegionStats:
    """One label of a segmentation, measured at the source image's geometry.

    ``bbox`` is (x0, y0, x1, y1) in source pixels, x1/y1 exclusive; ``centroid`` is
    (x, y) in source pixels (pixel centres at integer + 0.5). ``area_mm2`` is ``None``
    when the image gives no usable pixel spacing.
    """

    label: str
    pixel_count: int
    area_mm2: float | None
    bbox: tuple[int, int, int, int] | None
    centroid: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "pixel_count": self.pixel_count,
            "area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "bbox_xyxy": list(self.bbox) if self.bbox else None,
            "centroid_xy": [round(c, 2) for c in self.centroid] if self.centroid else None,
        }


@dataclass(frozen=True)
class SegmentationResult:
    """A segmentation head decoded back to the source image.

    ``mask``: uint8 [rows, columns] at the source geometry; 0 is background and
    ``i + 1`` is ``labels[i]``. ``area_source`` names the DICOM attribute the mm² figures
    come from, or says why there are none.
    """

    head: str
    labels: tuple[str, ...]
    mask: np.ndarray
    threshold: float
    regions: tuple[RegionStats, ...]
    area_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "threshold": self.threshold,
            "mask_shape": list(self.mask.shape),
            "area_source": self.area_source,
            "regions": [region.to_dict() for region in self.regions],
        }


@dataclass
class Prediction:
    """Everything radedge concluded about one image.

    ``timings_ms``: per-stage wall time (``read``, ``lut``, ``preprocess``,
    ``inference``, ``decode``, ``flags``) and ``total``, the end-to-end latency.
    ``provenance``: model id/version, bundle sha256, radedge version, backend.
    ``image``: size, spacing and how intensities were interpreted (no patient data).
    """

    source: str
    flags: tuple[Flag, ...]
    classifications: dict[str, ClassificationResult]
    segmentations: dict[str, SegmentationResult]
    timings_ms: dict[str, float]
    provenance: dict[str, Any]
    image: dict[str, Any]
    geometry: ResizeGeometry
    _input: Image | None = field(default=None, repr=False)
    _display_lut: tuple[np.ndarray, int] | None = field(default=None, repr=False)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "flags": [flag.to_dict() for flag in self.flags],
            "classifications": {name: result.to_dict() for name, result in self.classifications.items()},
            "segmentations": {name: result.to_dict() for name, result in self.segmentations.items()},
            "timings_ms": {stage: round(ms, 3) for stage, ms in self.timings_ms.items()},
            "image": self.image,
            "preprocess_geometry": self.geometry.as_dict(),
            "provenance": self.provenance,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def overlay(self, max_side: int = 1024) -> np.ndarray:
        """An RGB uint8 [h, w, 3] rendering for display: the windowed image (long side
        at most ``max_side``), each segmentation filled and outlined, and a banner with the
        flags raised."""
        if self._input is None or self._display_lut is None:
            raise ValueError("this Prediction was not made by Model.predict, so it holds no image to draw on")
        rows, columns = self._input.rows, self._input.columns
        scale = min(1.0, max_side / max(rows, columns))
        height, width = max(1, round(rows * scale)), max(1, round(columns * scale))
        table, first = self._display_lut
        grey, _ = preprocess(self._input.pixels, table, first, PreprocessSpec(height, width, resize="stretch"))
        canvas = cv2.cvtColor(np.clip(grey[0, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
        colours = [(255, 64, 32), (32, 160, 255), (64, 255, 64), (255, 224, 32)]
        for index, result in enumerate(self.segmentations.values()):
            for value in range(1, len(result.labels) + 1):
                region = (result.mask == value).astype(np.float32)
                small = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA) >= 0.5
                if not small.any():
                    continue
                colour = np.array(colours[(index + value - 1) % len(colours)], dtype=np.float32)
                canvas[small] = (0.6 * canvas[small] + 0.4 * colour).astype(np.uint8)
                contours, _ = cv2.findContours(small.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), max(1, width // 400))
        banner = (
            "  |  ".join(f"{flag.title} ({flag.score:.2f})" for flag in self.flags) if self.flags else "No flags"
        )
        band = max(18, height // 24)
        cv2.rectangle(canvas, (0, 0), (width, band), (0, 0, 0), thickness=-1)
        cv2.putText(
            canvas,
            banner,
            (6, int(band * 0.72)),
            cv2.FONT_HERSHEY_SIMPLEX,
            band / 40.0,
            (255, 80, 60) if self.flags else (200, 200, 200),
            max(1, band // 16),
            cv2.LINE_AA,
        )
        return canvas

    def save_overlay(self, path: str | os.PathLike, max_side: int = 1024) -> Path:
        """Write ``overlay()`` as a PNG, whole or not at all."""
        path = Path(path)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(self.overlay(max_side), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"OpenCV could not encode the overlay for {path}")
        write_atomically(path, encoded.tobytes())
        return path

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write ``to_json()``, whole or not at all."""
        path = Path(path)
        write_atomically(path, self.to_json().encode())
        return path

