"""What every head decoder shares: its context, its result's interface, and the registry.

A decoder turns the output tensors of one head into a result at the source image's
geometry: ``decode(spec, outputs, context) -> HeadResult``. Results say what a flag
condition sees in them (``findings``) and what the overlay draws (``layers``), so flag
rules and the overlay work for every kind without knowing it. Adding a head kind is a
module with its result type and decoder, registered with ``@register("kind")``, plus its
decode parameters in ``radedge.spec.heads``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError, BundleError
from ..io.image import PixelSpacing, unusable_spacing
from ..spec.geometry import ResizeGeometry
from ..spec.heads import HeadSpec


@dataclass(frozen=True)
class DecodeContext:
    """Where the head outputs came from and how to decode them.

    ``geometry``: the preprocess op's placement of the source (or its crop) in the model
    input. ``spacing``: the source's pixel spacing (None: ``spacing_problem`` says why); one
    outside ``radedge.io.image.USABLE_SPACING_MM`` is dropped here, with the problem, as
    ``Image`` drops it, so every mm figure a head gives is finite.
    ``threads``: CPU threads of the native ops (0: all cores); ``device``: where they run.
    ``decoded``: the results of the heads decoded before this one (a cam head reads the
    classification head it explains).
    """

    geometry: ResizeGeometry
    spacing: PixelSpacing | None = None
    spacing_problem: str | None = None
    threads: int = 0
    device: str = "cpu"
    decoded: Mapping[str, HeadResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # decode_outputs takes a spacing from any caller (radedge triton reads it back from JSON),
        # not only from an Image.
        problem = None if self.spacing is None else unusable_spacing(self.spacing)
        if problem is not None:
            object.__setattr__(self, "spacing", None)
            object.__setattr__(self, "spacing_problem", problem)

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) pixel spacing of the source in mm, or None."""
        return None if self.spacing is None else (self.spacing.row_mm, self.spacing.column_mm)

    @property
    def spacing_source(self) -> str:
        """The DICOM attribute mm figures come from, or why there are none."""
        if self.spacing is not None:
            return self.spacing.source
        return f"no mm figures: {self.spacing_problem or 'the image gives no pixel spacing'}"


@dataclass(frozen=True)
class Finding:
    """What a flag condition found in a head result: its ``score`` (in the kind's units),
    and where it is in source pixels: a ``point`` (x, y) and / or a ``box`` (x1, y1, x2, y2);
    ``where``: a place name the head itself gives (a heatmap channel's label)."""

    score: float
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None
    where: str | None = None


class NotEvaluable(Exception):
    """A flag condition cannot be evaluated on this image (e.g. an area without pixel spacing)."""


# What the overlay draws, in source-image pixels; results/overlay.py renders each kind.
@dataclass(frozen=True)
class MaskLayer:
    """A label mask (uint8 [rows, columns], 0 background, i + 1 = ``labels[i]``), filled and outlined."""

    mask: np.ndarray
    labels: tuple[str, ...]


@dataclass(frozen=True)
class BoxLayer:
    """Boxes (x1, y1, x2, y2) with a caption each."""

    boxes: tuple[tuple[tuple[float, float, float, float], str], ...]


@dataclass(frozen=True)
class PointLayer:
    """Points (x, y) with a caption each."""

    points: tuple[tuple[tuple[float, float], str], ...]


@dataclass(frozen=True)
class ColourMapLayer:
    """A map over the model input (float32 [h, w]) drawn in colour over the region the
    ``geometry`` placed in the input (``radedge.ops.overlay_cam``)."""

    values: np.ndarray
    geometry: ResizeGeometry
    colormap: str = "turbo"
    alpha: float = 0.4
    floor: float = 0.2


class HeadResult(ABC):
    """One head decoded at the source image's geometry. ``head``: its name; ``labels``: its
    labels; ``kind``: the head kind."""

    kind: ClassVar[str] = ""
    head: str
    labels: tuple[str, ...]

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, free of patient data."""

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        """What reaches ``threshold`` for ``label``, best first. Raises NotEvaluable where
        the result cannot tell."""
        raise NotEvaluable(f"a {self.kind} head raises no flags")

    def layers(self) -> tuple[Any, ...]:
        """What the overlay draws for this head."""
        return ()


Decoder = Callable[[HeadSpec, Mapping[str, np.ndarray], DecodeContext], HeadResult]
_DECODERS: dict[str, Decoder] = {}


def register(kind: str) -> Callable[[Decoder], Decoder]:
    """Register the decoder of head kind ``kind``."""

    def add(decoder: Decoder) -> Decoder:
        if kind in _DECODERS:
            raise ValueError(f"head kind {kind!r} already has a decoder ({_DECODERS[kind].__qualname__})")
        _DECODERS[kind] = decoder
        return decoder

    return add


def decoder_for(kind: str) -> Decoder:
    try:
        return _DECODERS[kind]
    except KeyError:
        raise BundleError(f"no decoder for head kind {kind!r}; this radedge decodes {', '.join(sorted(_DECODERS))}") from None


def decode_heads(
    specs: tuple[HeadSpec, ...], outputs: Mapping[str, np.ndarray], context: DecodeContext
) -> dict[str, HeadResult]:
    """Every head decoded, in the manifest's order except that a head reading another's
    result (a cam) comes after it. Returns results by head name."""
    ordered = sorted(specs, key=lambda spec: spec.kind == "cam")
    decoded: dict[str, HeadResult] = {}
    for spec in ordered:
        here = DecodeContext(
            context.geometry, context.spacing, context.spacing_problem, context.threads, context.device, decoded
        )
        decoded[spec.name] = decoder_for(spec.kind)(spec, outputs, here)
    return {spec.name: decoded[spec.name] for spec in specs}


def tensor(spec: HeadSpec, outputs: Mapping[str, np.ndarray], name: str | None = None, ndim: int | None = None):
    """Output tensor ``name`` (default: the head's own) as a C-contiguous float32 / float16
    array, checked for its rank; BackendError naming the head otherwise."""
    name = name or spec.tensors[0]
    try:
        values = outputs[name]
    except KeyError:
        raise BackendError(f"head {spec.name!r} reads output {name!r}, which the model did not produce") from None
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float16):
        values = values.astype(np.float32)
    if ndim is not None and values.ndim != ndim:
        raise BackendError(f"head {spec.name!r}: output {name!r} must have {ndim} dimensions; got shape {values.shape}")
    if ndim is not None and values.shape[0] != 1:
        raise BackendError(f"head {spec.name!r}: output {name!r} must hold one image (batch 1); got shape {values.shape}")
    return np.ascontiguousarray(values)


def op_error(spec: HeadSpec, exc: ValueError) -> BackendError:
    """An op's refusal of a head output (NaN, a shape that does not fit) as the head's BackendError."""
    return BackendError(f"head {spec.name!r}: {exc}")
