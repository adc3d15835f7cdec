"""The inputs a model is intended for (the manifest's ``scope``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """What a model accepts; anything else is refused (``OutOfScopeError``), or, when several
    models are loaded, routed to the models whose scope fits.

    Empty tuples mean "not restricted". ``modalities`` (DX, CR, CT...), ``presentation_intents``
    (FOR PRESENTATION / FOR PROCESSING) and ``body_parts`` (Body Part Examined) compare
    case-insensitively; ``sop_classes`` are SOP Class UIDs, compared exactly.
    """

    modalities: tuple[str, ...] = ()
    presentation_intents: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    sop_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("modalities", "presentation_intents", "body_parts", "sop_classes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"scope.{name} must be a list of strings; got {value!r}")
            object.__setattr__(self, name, tuple(value))
