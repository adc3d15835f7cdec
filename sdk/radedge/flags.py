"""Flag rules: from head results to the findings a technologist sees at acquisition."""

from __future__ import annotations

from collections.abc import Iterable

from .bundle import FlagRule
from .errors import BundleError
from .results import ClassificationResult, Flag


def evaluate_flags(rules: Iterable[FlagRule], classifications: dict[str, ClassificationResult]) -> tuple[Flag, ...]:
    """Each rule whose head's probability for its label is >= its threshold becomes a Flag,
    in the manifest's order."""
    raised = []
    for rule in rules:
        result = classifications.get(rule.head)
        if result is None:
            raise BundleError(f"flag {rule.code} reads head {rule.head!r}, which is not a classification head")
        score = result.probability(rule.label)
        if score >= rule.threshold:
            raised.append(Flag(rule.code, rule.title, score, rule.threshold, rule.head, rule.label))
    return tuple(raised)
