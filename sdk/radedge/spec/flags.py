"""Flag rules: when a head's result becomes a finding the technologist sees (the manifest's ``flags``).

A rule reads one label of one head and a threshold whose meaning depends on the head kind:

    classification  the label's probability >= threshold
    detection       a box of the label's class with score >= threshold (each such box is a finding)
    heatmap         a peak of the label's channel with score >= threshold (each such peak is a finding)
    segmentation    the label's region covers >= threshold mm² (needs the image's pixel spacing)

``requires`` lists further conditions on other heads that must hold as well (two heads
together). ``locate_with`` names a heatmap head whose nearest labelled point says where a
finding is (a vertebral level for a fracture point or a lesion box); without it, a heatmap
finding is where its own channel label says. ``title`` may hold ``{label}`` and ``{where}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Condition:
    """``label`` of head ``head`` reaches ``threshold`` (in the head kind's units, see the module)."""

    head: str
    label: str
    threshold: float

    def __post_init__(self) -> None:
        threshold = float(self.threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"a flag threshold must be a finite number; got {self.threshold!r} for {self.head}/{self.label}")
        object.__setattr__(self, "threshold", threshold)

    def to_document(self) -> dict[str, Any]:
        return {"head": self.head, "label": self.label, "threshold": self.threshold}


@dataclass(frozen=True)
class FlagRule:
    """Raise flag ``code`` when ``label`` of head ``head`` reaches ``threshold`` and every
    condition in ``requires`` holds.

    ``operating_point`` records how the threshold was chosen (data set, sensitivity,
    specificity), so a vendor can see what the number means before moving it.
    """

    code: str
    title: str
    head: str
    label: str
    threshold: float
    requires: tuple[Condition, ...] = ()
    locate_with: str | None = None
    operating_point: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code or not self.title:
            raise ValueError(f"a flag rule needs a code and a title; got code={self.code!r}, title={self.title!r}")
        object.__setattr__(self, "threshold", Condition(self.head, self.label, self.threshold).threshold)
        object.__setattr__(self, "requires", tuple(self.requires))
        try:
            self.title.format(label="", where="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"flag {self.code}: its title may hold {{label}} and {{where}} only; got {self.title!r} ({exc})"
            ) from None

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every condition of the rule, its own head's first."""
        return (Condition(self.head, self.label, self.threshold), *self.requires)

    @property
    def needs_where(self) -> bool:
        return "{where}" in self.title

    def to_document(self) -> dict[str, Any]:
        """The rule as the manifest writes it, under its head's ``flags``."""
        document: dict[str, Any] = {"code": self.code, "title": self.title, "label": self.label,
                                    "threshold": self.threshold}
        if self.requires:
            document["requires"] = [condition.to_document() for condition in self.requires]
        if self.locate_with is not None:
            document["locate_with"] = self.locate_with
        if self.operating_point:
            document["operating_point"] = dict(self.operating_point)
        return document
