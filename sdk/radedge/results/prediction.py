"""What models say about one image: ``Prediction`` (one model) and ``ImageAnalysis`` (every
model a ``ModelSet`` routed the image to, and those that did not apply, with the reason).

Both serialise to JSON (``to_json``) and render an overlay PNG (``save_overlay``). Neither
contains patient names, IDs or dates: the only link back to the input is the path or label
the caller gave. The JSON is strict (RFC 8259): a figure that is not finite has no place in it,
so measurements that cannot be finite are None with the reason beside them (``area_source``,
``size_source``, ``pixel_spacing_problem``), and serialising one that slipped through raises
ValueError instead of writing ``NaN`` or ``Infinity``, which other JSON readers refuse.

``from_dict`` reads a result back from ``to_dict`` (or ``json.loads`` of ``to_json``): the
object it gives has everything the JSON carries, so ``from_dict(d).to_dict() == d``; it has no
masks, class activation maps or image (the JSON holds their shapes only), so it cannot draw an
overlay (``NoImageError``) or make DICOM objects (``NotDicomSourceError``).

Pickling (``pickle``, ``multiprocessing``, ``concurrent.futures``) keeps every head's result,
masks included (run-length encoded when smaller), the source's DICOM header and the manifest,
so ``to_dicom`` works on an unpickled result; the decoded image is not pickled (it is most of
the size: 18 MB for a 3000 x 3000 radiograph), so ``overlay`` / ``save_overlay`` of an
unpickled result raise ``NoImageError``: draw them before pickling. A pickled result of a
DICOM input carries that header, patient data included, like the file it came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomically
from ..errors import NoImageError, RadedgeError
from ..heads import CamResult, ClassificationResult, DetectionResult, HeadResult, HeatmapResult, SegmentationResult
from ..intensity import build_lut
from ..io.image import Image
from ..spec.geometry import ResizeGeometry
from .flags import Flag
from .overlay import DisplayImage, encode_png, render_overlay


def _of_kind(heads: dict[str, HeadResult], kind: type) -> dict[str, Any]:
    return {name: result for name, result in heads.items() if isinstance(result, kind)}


#: The JSON key of each head kind's results (``Prediction.to_dict``).
_KIND_KEYS = {
    "classification": "classifications",
    "segmentation": "segmentations",
    "detection": "detections",
    "heatmap": "heatmaps",
    "cam": "cams",
}
_UNPICKLED = "its image was not pickled with it; draw the overlay before pickling, or predict again"
_FROM_JSON = "it was read back from JSON (from_dict), which holds no image; predict again from the source"


def _heads_from_dict(document: dict[str, Any], geometry: ResizeGeometry) -> dict[str, HeadResult]:
    """Every head result of a ``Prediction.to_dict``, in the order of its ``heads``."""
    readers = {
        "classification": ClassificationResult.from_dict,
        "segmentation": SegmentationResult.from_dict,
        "detection": DetectionResult.from_dict,
        "heatmap": HeatmapResult.from_dict,
        "cam": lambda name, described: CamResult.from_dict(name, described, geometry),
    }
    kinds = document.get("heads") or {
        name: kind for kind, key in _KIND_KEYS.items() for name in document.get(key, {})
    }
    heads: dict[str, HeadResult] = {}
    for name, kind in kinds.items():
        if kind not in readers:
            raise ValueError(f"head {name!r} is of kind {kind!r}; this radedge reads {', '.join(readers)}")
        heads[name] = readers[kind](name, document[_KIND_KEYS[kind]][name])
    return heads


def _short(source: str, limit: int = 48) -> str:
    return source if len(source) <= limit else "..." + source[-(limit - 3):]


class _Outputs:
    """What ``Prediction`` and ``ImageAnalysis`` write the same way, from their ``overlay()``
    and ``to_json()``."""

    def save_overlay(self, path: str | os.PathLike, max_side: int = 1024) -> Path:
        """Write ``overlay()`` as a PNG, whole or not at all."""
        return write_atomically(Path(path), encode_png(self.overlay(max_side)))

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write ``to_json()``, whole or not at all."""
        return write_atomically(Path(path), self.to_json().encode())

    def to_dicom(self):
        """The DICOM objects for this result, a ``radedge.dicom_out.DicomResults``: a SEG per
        segmentation head, a TID 1500 measurement report (SR), a presentation state (GSPS)
        drawing the findings over the source, and a key object selection (KOS) when flagged;
        for an image no model analysed, the SR alone, saying why. Iterate it for the pydicom
        data sets; ``.save(folder, stem)`` writes them. Raises ``NotDicomSourceError`` when
        the input was not DICOM."""
        from ..dicom_out import to_dicom

        return to_dicom(self)


@dataclass
class Prediction(_Outputs):
    """Everything one model concluded about one image.

    ``heads``: every head's result by head name (also by kind: ``classifications``,
    ``segmentations``, ``detections``, ``heatmaps``, ``cams``). ``display_head``: the head
    whose verdict the console shows first (the manifest's), or None. ``timings_ms``:
    per-stage wall time (``read``, ``lut``, ``preprocess``, ``inference``, ``decode``,
    ``flags``) and ``total``, the end-to-end latency; a model run by a ``ModelSet`` has no
    ``read``, and ``lut`` only when it built the table itself. ``provenance``: model
    id/version, bundle sha256, radedge version, backend. ``image``: size, spacing and how
    intensities were interpreted (no patient data). ``geometry``: where the image (or the
    region it analysed) lay in the model input. ``notes``: what could not be checked or
    evaluated. Heads are named by what they mean (the manifest's head names: ``"tumor"``,
    ``"lesion"``), not by the model's output tensors.
    """

    source: str
    model_id: str
    flags: tuple[Flag, ...]
    heads: dict[str, HeadResult]
    timings_ms: dict[str, float]
    provenance: dict[str, Any]
    image: dict[str, Any]
    geometry: ResizeGeometry
    display_head: str | None = None
    notes: list[str] = field(default_factory=list)
    _display: DisplayImage | None = field(default=None, repr=False, compare=False)
    # For DICOM outputs (to_dicom): the source's header (patient data; never printed) and the
    # manifest (codes, flag rules). None for a result made without them.
    _header: Any = field(default=None, repr=False, compare=False)
    _manifest: Any = field(default=None, repr=False, compare=False)
    # Why there is no image to draw on, when there is none.
    _no_image: str | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        flags = ", ".join(f"{flag.code} {flag.score:.2f}" for flag in self.flags) or "no flags"
        verdict = f"; {self.display_head}: {self.verdict}" if self.verdict is not None else ""
        total = self.timings_ms.get("total")
        timing = f"; {total:.1f} ms" if total is not None else ""
        return f"<Prediction {self.model_id} on {_short(self.source)!r}: {flags}{verdict}{timing}>"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if state["_display"] is not None:
            state["_display"], state["_no_image"] = None, _UNPICKLED
        return state

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Prediction:
        """The prediction ``to_dict`` (or ``json.loads(to_json())``) describes; see the module."""
        geometry = ResizeGeometry(**document["preprocess_geometry"])
        return cls(
            source=document["source"],
            model_id=document["model_id"],
            flags=tuple(Flag.from_dict(flag) for flag in document["flags"]),
            heads=_heads_from_dict(document, geometry),
            timings_ms=dict(document["timings_ms"]),
            provenance=dict(document["provenance"]),
            image=dict(document["image"]),
            geometry=geometry,
            display_head=document.get("display_head"),
            notes=list(document.get("notes", ())),
            _no_image=_FROM_JSON,
        )

    @property
    def flagged(self) -> bool:
        """True when at least one flag was raised: what a console shows first."""
        return bool(self.flags)

    @property
    def classifications(self) -> dict[str, ClassificationResult]:
        """The ``ClassificationResult`` heads by head name, in manifest order."""
        return _of_kind(self.heads, ClassificationResult)

    @property
    def segmentations(self) -> dict[str, SegmentationResult]:
        """The ``SegmentationResult`` heads by head name, in manifest order."""
        return _of_kind(self.heads, SegmentationResult)

    @property
    def detections(self) -> dict[str, DetectionResult]:
        """The ``DetectionResult`` heads by head name, in manifest order."""
        return _of_kind(self.heads, DetectionResult)

    @property
    def heatmaps(self) -> dict[str, HeatmapResult]:
        """The ``HeatmapResult`` heads by head name, in manifest order."""
        return _of_kind(self.heads, HeatmapResult)

    @property
    def cams(self) -> dict[str, CamResult]:
        """The ``CamResult`` heads by head name, in manifest order."""
        return _of_kind(self.heads, CamResult)

    @property
    def verdict(self) -> str | None:
        """The display head's top label (classification), or None."""
        result = self.heads.get(self.display_head) if self.display_head else None
        return result.top_label if isinstance(result, ClassificationResult) else None

    def banner(self) -> list[str]:
        """What the console shows first: each flag, then the display head's verdict."""
        lines = [f"{flag.title} ({flag.score:.2f})" for flag in self.flags]
        verdict = self.verdict
        if verdict is not None:
            probability = self.heads[self.display_head].probability(verdict)
            lines.append(f"{self.display_head}: {verdict} ({probability:.2f})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Everything the result holds as JSON values (docs/results.md); ``from_dict`` reads it back."""
        return {
            "source": self.source,
            "model_id": self.model_id,
            "flags": [flag.to_dict() for flag in self.flags],
            "display_head": self.display_head,
            "verdict": self.verdict,
            "heads": {name: result.kind for name, result in self.heads.items()},
            "classifications": {name: r.to_dict() for name, r in self.classifications.items()},
            "segmentations": {name: r.to_dict() for name, r in self.segmentations.items()},
            "detections": {name: r.to_dict() for name, r in self.detections.items()},
            "heatmaps": {name: r.to_dict() for name, r in self.heatmaps.items()},
            "cams": {name: r.to_dict() for name, r in self.cams.items()},
            "timings_ms": {stage: round(ms, 3) for stage, ms in self.timings_ms.items()},
            "image": self.image,
            "preprocess_geometry": self.geometry.as_dict(),
            "notes": list(self.notes),
            "provenance": self.provenance,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as strict JSON text (RFC 8259: never NaN or Infinity); ``indent=None`` for one line."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def layers(self) -> list[Any]:
        """What the overlay draws, head by head: masks, boxes, points and maps in source pixels."""
        return [layer for result in self.heads.values() for layer in result.layers()]

    def overlay(self, max_side: int = 1024) -> np.ndarray:
        """An RGB uint8 [h, w, 3] rendering for display: the windowed image (long side at most
        ``max_side``), every head drawn (masks, boxes, points, class activation maps) and a
        banner with the flags raised."""
        if self._display is None:
            raise NoImageError(
                f"this Prediction holds no image to draw on: {self._no_image or 'it was not made by Model.predict'}"
            )
        return render_overlay(self._display, self.layers(), self.banner(), alert=self.flagged, max_side=max_side)


@dataclass
class ImageAnalysis(_Outputs):
    """One image through every model of a ``ModelSet``.

    ``predictions``: by model id, the models whose scope accepted the image (first-stage
    models before the second-stage models fed by them). ``not_applied``: by model id, why
    a model did not analyse it (out of its scope, or its input region was not found).
    ``not_analysable``: by model id, why a model that applies found nothing it could
    analyse meaningfully (``NotAnalysableError``: intensities without meaning, a uniform
    image, too few pixels), and the second-stage models it feeds. ``analysed`` is False
    when no model analysed the image: ``reason`` then says why, a result and not an error,
    and no flag is raised. ``timings_ms``: ``read``, ``lut`` (every table built, summed)
    and ``total``, from bytes to flags of every model; each prediction holds its own stages.
    """

    source: str
    predictions: dict[str, Prediction]
    not_applied: dict[str, str]
    image: dict[str, Any]
    timings_ms: dict[str, float]
    not_analysable: dict[str, str] = field(default_factory=dict)
    _display: DisplayImage | None = field(default=None, repr=False, compare=False)
    # The image no model analysed: its own window is built only if an overlay is asked for.
    _unanalysed: Image | None = field(default=None, repr=False, compare=False)
    _header: Any = field(default=None, repr=False, compare=False)  # the source's DICOM header, for to_dicom
    _no_image: str | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        if self.analysed:
            said = "; ".join(
                f"{model}: " + (", ".join(f"{flag.code} {flag.score:.2f}" for flag in prediction.flags) or "no flags")
                for model, prediction in self.predictions.items()
            )
        else:
            said = "not analysed"
        total = self.timings_ms.get("total")
        timing = f"; {total:.1f} ms" if total is not None else ""
        return f"<ImageAnalysis of {_short(self.source)!r}: {said}{timing}>"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if state["_display"] is not None or state["_unanalysed"] is not None:
            state["_display"], state["_unanalysed"], state["_no_image"] = None, None, _UNPICKLED
        return state

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ImageAnalysis:
        """The analysis ``to_dict`` (or ``json.loads(to_json())``) describes; see the module."""
        return cls(
            source=document["source"],
            predictions={model: Prediction.from_dict(described) for model, described in document["models"].items()},
            not_applied=dict(document["not_applied"]),
            image=dict(document["image"]),
            timings_ms=dict(document["timings_ms"]),
            not_analysable=dict(document.get("not_analysable", {})),
            _no_image=_FROM_JSON,
        )

    def _canvas(self) -> DisplayImage | None:
        if self._display is None and self._unanalysed is not None:
            image, self._unanalysed = self._unanalysed, None
            try:
                lut = build_lut(image)
            except RadedgeError:
                return None
            self._display = DisplayImage(image.pixels, lut.table, lut.first_stored_value)
        return self._display

    @property
    def analysed(self) -> bool:
        """True when at least one model analysed the image; else ``reason`` says why none did."""
        return bool(self.predictions)

    @property
    def reason(self) -> str | None:
        """Why no model analysed the image, or None when one did: what the image lacks, once
        for all the models that found the same, then the models that do not apply (their
        reasons are in ``not_applied``); or, when every model is out of scope, why each is."""
        if self.analysed:
            return None
        if not self.not_analysable:
            why = "; ".join(f"{model}: {reason}" for model, reason in self.not_applied.items())
            return f"no loaded model applies to this image ({why})" if why else "no model is loaded"
        models_by_reason: dict[str, list[str]] = {}
        for model, reason in self.not_analysable.items():
            models_by_reason.setdefault(reason, []).append(model)
        lacking = "; ".join(f"{reason} [{', '.join(models)}]" for reason, models in models_by_reason.items())
        others = f" ({', '.join(self.not_applied)}: not applied)" if self.not_applied else ""
        return lacking + others

    @property
    def drawable(self) -> bool:
        """Whether ``overlay`` can draw: False only when no model analysed the image and its
        own window cannot be applied."""
        return self._canvas() is not None

    @property
    def flags(self) -> tuple[Flag, ...]:
        """Every model's flags, in model order."""
        return tuple(flag for prediction in self.predictions.values() for flag in prediction.flags)

    @property
    def flagged(self) -> bool:
        """True when at least one flag was raised: what a console shows first."""
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        """Everything the result holds as JSON values (docs/results.md); ``from_dict`` reads it back."""
        return {
            "source": self.source,
            "analysed": self.analysed,
            "reason": self.reason,
            "flags": [flag.to_dict() for flag in self.flags],
            "models": {model: prediction.to_dict() for model, prediction in self.predictions.items()},
            "not_applied": dict(self.not_applied),
            "not_analysable": dict(self.not_analysable),
            "timings_ms": {stage: round(ms, 3) for stage, ms in self.timings_ms.items()},
            "image": self.image,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as strict JSON text (RFC 8259: never NaN or Infinity); ``indent=None`` for one line."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def overlay(self, max_side: int = 1024) -> np.ndarray:
        """One rendering of every model's results (see ``Prediction.overlay``); an image no model
        analysed shows the reason in the banner."""
        display = self._canvas()
        if display is None:
            raise NoImageError(
                f"this ImageAnalysis holds no image to draw on: {self._no_image or 'its window cannot be applied'}"
            )
        layers = [layer for prediction in self.predictions.values() for layer in prediction.layers()]
        banner = [line for prediction in self.predictions.values() for line in prediction.banner()]
        if not self.analysed:
            banner = ["Not analysed: nothing in this image a model can analyse" if self.not_analysable
                      else "Not analysed: no model applies to this image"]
        return render_overlay(display, layers, banner, alert=self.flagged, max_side=max_side)
