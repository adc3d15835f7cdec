"""Flag rules over any head kind: from head results to the findings a technologist sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BundleError
from ..heads.base import Finding, HeadResult, NotEvaluable
from ..heads.heatmap import HeatmapResult
from ..spec.flags import FlagRule

#: What ``{where}`` says in a flag title when nothing located the finding.
UNLOCATED = "an undetermined location"


@dataclass(frozen=True)
class Flag:
    """A finding raised for the technologist: ``label`` of ``head`` reached ``threshold``
    with ``score`` (the best finding's; in the head kind's units, see ``radedge.spec.flags``),
    and every further condition of the rule held.

    ``title``: the rule's title with ``{label}`` and ``{where}`` filled in. ``where``: the
    places of the findings (vertebral levels...), best first, or None. ``locations``: each
    finding's box (x1, y1, x2, y2) or point (x, y) in source-image pixels, best first.
    ``model``: the id of the model that raised it.
    """

    code: str
    title: str
    score: float
    threshold: float
    head: str
    label: str
    where: str | None = None
    locations: tuple[tuple[float, ...], ...] = ()
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The flag as JSON values, as ``to_json`` of a result writes it (``model`` added there)."""
        return {
            "code": self.code,
            "title": self.title,
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "head": self.head,
            "label": self.label,
            "where": self.where,
            "locations": [[round(v, 2) for v in location] for location in self.locations],
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Flag:
        """The flag ``to_dict`` describes (score and locations as rounded there)."""
        return cls(
            code=str(document["code"]), title=str(document["title"]), score=float(document["score"]),
            threshold=float(document["threshold"]), head=str(document["head"]), label=str(document["label"]),
            where=document.get("where"),
            locations=tuple(tuple(float(v) for v in location) for location in document.get("locations", ())),
            model=document.get("model"),
        )


def evaluate_flags(
    rules: Iterable[FlagRule], results: Mapping[str, HeadResult], *, model: str | None = None
) -> tuple[tuple[Flag, ...], list[str]]:
    """The flags the rules raise on these head results, in the rules' order, and notes on
    rules that could not be evaluated on this image (e.g. an area without pixel spacing)."""
    raised, notes = [], []
    for rule in rules:
        try:
            findings = _findings(results, rule.head, rule.label, rule.threshold, rule.code)
            held = bool(findings) and all(
                _findings(results, c.head, c.label, c.threshold, rule.code) for c in rule.requires
            )
        except NotEvaluable as exc:
            notes.append(f"flag {rule.code} not evaluated: {exc}")
            continue
        if not held:
            continue
        findings = sorted(findings, key=lambda f: -f.score)
        places = _places(findings, results, rule)
        where = ", ".join(dict.fromkeys(place for place in places if place)) or None
        raised.append(
            Flag(
                code=rule.code,
                title=rule.title.format(label=rule.label, where=where or UNLOCATED),
                score=findings[0].score,
                threshold=rule.threshold,
                head=rule.head,
                label=rule.label,
                where=where,
                locations=tuple(f.box or f.point for f in findings if (f.box or f.point) is not None),
                model=model,
            )
        )
    return tuple(raised), notes


def _findings(results: Mapping[str, HeadResult], head: str, label: str, threshold: float, code: str):
    result = results.get(head)
    if result is None:
        raise BundleError(f"flag {code} reads head {head!r}, which the model's results do not hold")
    return result.findings(label, threshold)


def _places(findings: list[Finding], results: Mapping[str, HeadResult], rule: FlagRule) -> list[str | None]:
    if rule.locate_with is None:
        return [finding.where for finding in findings]
    locator = results.get(rule.locate_with)
    if not isinstance(locator, HeatmapResult):
        raise BundleError(f"flag {rule.code}: locate_with {rule.locate_with!r} is not a decoded heatmap head")
    places = []
    for finding in findings:
        point = finding.point
        if point is None and finding.box is not None:
            x1, y1, x2, y2 = finding.box
            point = ((x1 + x2) / 2, (y1 + y2) / 2)
        nearest = None if point is None else locator.nearest(*point)
        places.append(None if nearest is None else nearest.label)
    return places
