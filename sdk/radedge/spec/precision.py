"""Which precisions a bundle carries and the accuracy gate each had to pass.

Manifest ``precisions``: precision name -> the file that holds it and the gate figures it
passed, e.g. ``{"fp32": {"file": "model.onnx"}, "int8": {"file": "model.int8.onnx",
"gate": {"passed": true, "heads": {...}}}}``. Only a precision that passed its gate is
listed; a bundle without the section holds one FP32 ``model.onnx``.

Manifest ``gate``: the limits every reduced precision is held to, against the FP32 model on
the validation set (``GateThresholds``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

PrecisionName = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: Where each precision is written in a bundle.
PRECISION_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


@dataclass(frozen=True)
class Precision:
    """One precision of the model in a bundle: ``file`` (an ONNX file of the bundle) and
    ``gate``, the figures it passed (empty for FP32 of an older bundle)."""

    name: str
    file: str
    gate: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision {self.name!r} is not one of {list(PRECISIONS)}")
        if not isinstance(self.file, str) or not self.file:
            raise ValueError(f"precision {self.name!r} names no file")

    def to_document(self) -> dict[str, Any]:
        return {"file": self.file, **({"gate": self.gate} if self.gate else {})}


@dataclass(frozen=True)
class GateThresholds:
    """How far a reduced-precision model may move from FP32 on the validation set, in what a
    clinician sees:

    - ``auc_drop``: classification AUC (against the validation labels) may fall by at most this;
    - ``dice``: each segmentation mask's Dice against FP32's, at least this;
    - ``peak_px``: heatmap peaks within this many input pixels of FP32's;
    - ``map_drop``: detection mAP@0.5 against FP32's boxes, at most this below 1;
    - ``flag_changes``: the fraction of validation images whose flag decisions change, at most this.
    """

    auc_drop: float = 0.005
    dice: float = 0.98
    peak_px: float = 2.0
    map_drop: float = 0.01
    flag_changes: float = 0.01

    def __post_init__(self) -> None:
        for item in fields(self):
            value = float(getattr(self, item.name))
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"gate.{item.name} must be a finite number >= 0; got {getattr(self, item.name)!r}")
            object.__setattr__(self, item.name, value)
        if self.dice > 1:
            raise ValueError(f"gate.dice is a Dice coefficient, at most 1; got {self.dice}")

    def to_document(self) -> dict[str, float]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> GateThresholds:
        names = {item.name for item in fields(cls)}
        unknown = sorted(set(document) - names)
        if unknown:
            raise ValueError(f"gate has unknown {', '.join(unknown)}; it takes {', '.join(sorted(names))}")
        return cls(**document)


def parse_precisions(document: Any) -> dict[str, Precision]:
    """The manifest's ``precisions`` section (None: one FP32 ``model.onnx``)."""
    if document is None:
        return {"fp32": Precision("fp32", PRECISION_FILES["fp32"])}
    if not isinstance(document, Mapping) or not document:
        raise ValueError("precisions must map fp32 / fp16 / int8 to {\"file\": ..., \"gate\": ...}")
    parsed = {}
    for name, entry in document.items():
        unknown = sorted(set(entry) - {"file", "gate"}) if isinstance(entry, Mapping) else None
        if unknown is None or unknown:
            raise ValueError(f"precisions.{name} must be {{\"file\": ..., \"gate\": ...}}; got {entry!r}")
        parsed[name] = Precision(name, entry.get("file"), dict(entry.get("gate", {})))
    return {name: parsed[name] for name in PRECISIONS if name in parsed}
