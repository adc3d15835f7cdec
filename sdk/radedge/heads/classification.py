"""Classification heads: logits [1, K] -> probabilities over the labels (softmax or sigmoid).

A model that combines heads (bone-quality: blastic? and lytic? as two sigmoid heads, an MLP
inside the model combining them into normal / blastic / lytic / mixed) is just several
classification heads; the manifest's ``display_head`` names the one the console shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..spec.heads import HeadSpec
from .base import DecodeContext, Finding, HeadResult, register, tensor


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp overflows to inf for logits below about -88 (float32); 1 / (1 + inf) is the right 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-logits))


@dataclass(frozen=True, eq=False)
class ClassificationResult(HeadResult):
    """Class probabilities of one classification head: ``probabilities`` float32[K] over ``labels``."""

    kind: ClassVar[str] = "classification"
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

    @classmethod
    def from_dict(cls, head: str, document: Mapping[str, Any]) -> ClassificationResult:
        """The result ``to_dict`` describes (probabilities as rounded there, in label order)."""
        probabilities = document["probabilities"]
        return cls(head, tuple(probabilities), np.array(list(probabilities.values()), dtype=np.float32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassificationResult):
            return NotImplemented
        return (self.head, self.labels) == (other.head, other.labels) and np.array_equal(
            self.probabilities, other.probabilities
        )

    __hash__ = None  # type: ignore[assignment]

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        score = self.probability(label)
        return (Finding(score),) if score >= threshold else ()


@register("classification")
def decode_classification(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> ClassificationResult:
    """logits float32[1, K] (or [K]) -> probabilities over ``spec.labels``."""
    values = tensor(spec, outputs).astype(np.float32).reshape(-1)
    if values.size != len(spec.labels):
        raise BackendError(f"head {spec.name!r} gave {values.size} values for {len(spec.labels)} labels {spec.labels}")
    if not np.isfinite(values).all():
        raise BackendError(f"head {spec.name!r} produced non-finite logits; the model or its input is broken")
    probabilities = softmax(values) if spec.activation == "softmax" else sigmoid(values)
    return ClassificationResult(spec.name, spec.labels, probabilities.astype(np.float32))
