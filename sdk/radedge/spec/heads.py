"""The heads of a model: what each output means and how to decode it (the manifest's ``outputs``).

A head has a name (what the results are keyed by), a kind, labels, an activation and
kind-specific decode parameters; it reads one or more of the network's output tensors.
Each kind's decode parameters are a dataclass registered in ``DECODE_PARAMETERS``;
``radedge.heads`` holds the decoder of each kind.

    kind            reads                                   labels are
    classification  logits [1, K]                           the K classes
    segmentation    logits [1, C, h, w]                     the C (sigmoid) or C - 1 (softmax) regions
    detection       dense maps per level, or boxes + scores the box classes
    heatmap         maps [1, C, h, w]                       the C landmarks / point kinds, one per channel
    cam             maps [1, K, h, w]                       the K classes of the head it explains
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from .flags import FlagRule

HeadKind = Literal["classification", "segmentation", "detection", "heatmap", "cam"]


def _reject_unknown(kind: str, document: Mapping[str, Any], cls: type) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(
            f"a {kind} head's decode takes {', '.join(sorted(known)) or 'no parameters'}; "
            f"got unknown {', '.join(unknown)}"
        )


def decode_document(decode: Any) -> dict[str, Any]:
    """A decode dataclass as the manifest writes it: the parameters that differ from their defaults."""
    document: dict[str, Any] = {}
    for f in fields(decode):
        value = getattr(decode, f.name)
        if f.default is not MISSING and value == f.default:
            continue
        if f.name == "levels":
            value = [{k: v for k, v in asdict(level).items() if v is not None} for level in value]
        document[f.name] = value
    return document


def _probability(name: str, value: Any, *, upper_open: bool = False) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value and (value < 1.0 if upper_open else value <= 1.0)):
        raise ValueError(f"{name} must be a probability in [0, 1{')' if upper_open else ']'}; got {value}")
    return value


def _positive_int(name: str, value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValueError(f"{name} must be an integer from 1 to {limit}; got {value!r}")
    return value


@dataclass(frozen=True)
class ClassificationDecode:
    """A classification head takes no decode parameters: softmax or sigmoid over its labels."""

    kind: ClassVar[str] = "classification"

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ClassificationDecode:
        _reject_unknown(cls.kind, document, cls)
        return cls()


@dataclass(frozen=True)
class SegmentationDecode:
    """``threshold``: the probability a sigmoid label needs (softmax heads take the argmax)."""

    kind: ClassVar[str] = "segmentation"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", _probability("segmentation decode.threshold", self.threshold))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SegmentationDecode:
        _reject_unknown(cls.kind, document, cls)
        return cls(**document)


@dataclass(frozen=True)
class DenseLevel:
    """One level of a dense anchor-free detector (FCOS / CenterNet): the output tensors holding
    its class scores [1, K, h, w], box distances [1, 4, h, w] (left, top, right, bottom) and
    optionally centerness [1, 1, h, w], and its stride in model-input pixels per cell."""

    scores: str
    distances: str
    stride: float
    centerness: str | None = None

    def __post_init__(self) -> None:
        stride = float(self.stride)
        if not (math.isfinite(stride) and stride > 0):
            raise ValueError(f"a detection level's stride must be > 0 model-input pixels per cell; got {self.stride!r}")
        object.__setattr__(self, "stride", stride)


@dataclass(frozen=True)
class DetectionDecode:
    """How a detection head becomes boxes (see ``radedge.ops.detection`` for the exact rules).

    ``format``: ``"dense"`` (``levels``: one ``DenseLevel`` per stride) or ``"boxes"``
    (``boxes``: the tensor of [1, M, 4] boxes in model-input pixels, ``box_format`` xyxy or
    cxcywh; ``scores``: the tensor of [1, M, K] scores). Then ``score_threshold``,
    ``pre_nms_top_k``, class-aware (or ``class_agnostic``) NMS at ``iou_threshold``, at most
    ``max_detections``. The head's activation says what the scores are: ``sigmoid`` for
    logits, ``none`` for probabilities.
    """

    kind: ClassVar[str] = "detection"
    format: Literal["dense", "boxes"] = "dense"
    levels: tuple[DenseLevel, ...] = ()
    boxes: str | None = None
    scores: str | None = None
    box_format: Literal["xyxy", "cxcywh"] = "xyxy"
    centerness_mode: Literal["sqrt", "product"] = "sqrt"
    distance_units: Literal["stride", "pixels"] = "stride"
    cell_offset: float = 0.5
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    pre_nms_top_k: int = 1000
    max_detections: int = 100
    class_agnostic: bool = False

    def __post_init__(self) -> None:
        if self.format == "dense":
            if not self.levels:
                raise ValueError("a dense detection head needs decode.levels: one {scores, distances, stride} per level")
            if self.boxes is not None or self.scores is not None:
                raise ValueError("decode.boxes / decode.scores belong to format 'boxes', not 'dense'")
            with_centerness = {level.centerness is not None for level in self.levels}
            if len(with_centerness) > 1:
                raise ValueError("decode.levels: give centerness for every level or for none")
        elif self.format == "boxes":
            if not self.boxes or not self.scores:
                raise ValueError("a detection head of format 'boxes' needs decode.boxes and decode.scores tensor names")
            if self.levels:
                raise ValueError("decode.levels belong to format 'dense', not 'boxes'")
        else:
            raise ValueError(f"detection decode.format must be 'dense' or 'boxes'; got {self.format!r}")
        for name, allowed in (
            ("box_format", ("xyxy", "cxcywh")),
            ("centerness_mode", ("sqrt", "product")),
            ("distance_units", ("stride", "pixels")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"detection decode.{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        object.__setattr__(self, "score_threshold", _probability("decode.score_threshold", self.score_threshold,
                                                                 upper_open=True))
        object.__setattr__(self, "iou_threshold", _probability("decode.iou_threshold", self.iou_threshold))
        _positive_int("decode.pre_nms_top_k", self.pre_nms_top_k, 32768)
        _positive_int("decode.max_detections", self.max_detections, 32768)

    @property
    def tensors(self) -> tuple[str, ...]:
        if self.format == "boxes":
            return (self.boxes, self.scores)  # type: ignore[return-value]
        return tuple(name for level in self.levels for name in (level.scores, level.distances, level.centerness) if name)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> DetectionDecode:
        _reject_unknown(cls.kind, document, cls)
        values = dict(document)
        levels = values.pop("levels", ())
        if not isinstance(levels, (list, tuple)):
            raise ValueError(f"detection decode.levels must be a list of {{scores, distances, stride}}; got {levels!r}")
        parsed = []
        for index, level in enumerate(levels):
            if not isinstance(level, Mapping):
                raise ValueError(f"detection decode.levels[{index}] must be an object; got {level!r}")
            unknown = sorted(set(level) - {"scores", "distances", "stride", "centerness"})
            if unknown:
                raise ValueError(f"detection decode.levels[{index}] has unknown {', '.join(unknown)}")
            parsed.append(DenseLevel(**level))
        return cls(levels=tuple(parsed), **values)


@dataclass(frozen=True)
class HeatmapDecode:
    """How a heatmap head becomes points: ``mode`` ``"peaks"`` (up to ``k`` local maxima per
    channel at or above ``threshold``, in a (2 ``radius`` + 1)² window) or ``"argmax"`` (the
    best cell of each channel: one landmark per channel, at or above ``threshold``). The
    threshold is a probability for ``activation`` sigmoid, a raw value for ``none``.
    ``exclusive_radius`` (cells; 0: off): the channels are mutually exclusive classes of one
    kind of point (the Genant grades of a fracture): of peaks of different channels within
    that many cells of each other (the size of one finding), only the highest scoring is
    kept, so one finding never carries two classes."""

    kind: ClassVar[str] = "heatmap"
    mode: Literal["peaks", "argmax"] = "peaks"
    threshold: float = 0.5
    k: int = 1
    radius: int = 1
    refine: bool = True
    exclusive_radius: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("peaks", "argmax"):
            raise ValueError(f"heatmap decode.mode must be 'peaks' or 'argmax'; got {self.mode!r}")
        if not math.isfinite(float(self.threshold)):
            raise ValueError(f"heatmap decode.threshold must be finite; got {self.threshold!r}")
        object.__setattr__(self, "threshold", float(self.threshold))
        _positive_int("heatmap decode.k", self.k, 1024)
        _positive_int("heatmap decode.radius", self.radius, 32)
        if self.exclusive_radius != 0:
            _positive_int("heatmap decode.exclusive_radius", self.exclusive_radius, 256)
            if self.mode != "peaks":
                raise ValueError("heatmap decode.exclusive_radius applies to mode 'peaks' (argmax keeps one point per channel)")

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> HeatmapDecode:
        _reject_unknown(cls.kind, document, cls)
        return cls(**document)


@dataclass(frozen=True)
class CamDecode:
    """A class activation map head, tied to the classification head it ``explains``: the map
    of that head's top class (or of ``label``, always) is shown, coloured with ``colormap``
    (``turbo`` / ``jet``) at opacity ``alpha`` where its min-max normalised value reaches
    ``floor``."""

    kind: ClassVar[str] = "cam"
    explains: str = ""
    label: str | None = None
    colormap: Literal["turbo", "jet"] = "turbo"
    alpha: float = 0.4
    floor: float = 0.2

    def __post_init__(self) -> None:
        if not self.explains:
            raise ValueError("a cam head needs decode.explains: the classification head whose classes it maps")
        if self.colormap not in ("turbo", "jet"):
            raise ValueError(f"cam decode.colormap must be 'turbo' or 'jet'; got {self.colormap!r}")
        object.__setattr__(self, "alpha", _probability("cam decode.alpha", self.alpha))
        object.__setattr__(self, "floor", _probability("cam decode.floor", self.floor))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> CamDecode:
        _reject_unknown(cls.kind, document, cls)
        return cls(**document)


#: The decode parameters of each head kind; a new kind registers its dataclass here and its
#: decoder in ``radedge.heads``.
DECODE_PARAMETERS: dict[str, type] = {
    cls.kind: cls for cls in (ClassificationDecode, SegmentationDecode, DetectionDecode, HeatmapDecode, CamDecode)
}

#: The activations each kind accepts.
ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "classification": ("softmax", "sigmoid"),
    "segmentation": ("softmax", "sigmoid"),
    "detection": ("sigmoid", "none"),
    "heatmap": ("none", "sigmoid"),
    "cam": ("none",),
}


@dataclass(frozen=True)
class HeadSpec:
    """One head of the model.

    ``name``: what the head means (``"tumor"``, ``"lesion"``), which results, flags and JSON
    are keyed by. ``tensor``: the network output it reads (default: ``name``; detection heads
    name theirs in ``decode``), which the manifest always writes. ``kind``:
    see the module docstring. ``labels``: what each class / channel / region means.
    ``activation``: ``softmax`` / ``sigmoid`` / ``none``, as ``ACTIVATIONS`` allows for the
    kind. ``decode``: the kind's decode parameters. ``flags``: the rules that raise flags
    from this head. ``codes``: optional coded concepts per label (e.g. SNOMED CT), carried
    to DICOM outputs: label -> ``{"value", "scheme", "meaning"}`` (strings, optionally
    ``"version"``), for labels of this head only.
    """

    name: str
    kind: HeadKind
    labels: tuple[str, ...]
    activation: str
    decode: Any = None
    flags: tuple[FlagRule, ...] = ()
    tensor: str | None = None
    codes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DECODE_PARAMETERS:
            raise ValueError(f"head {self.name!r}: kind {self.kind!r} is not one of {', '.join(DECODE_PARAMETERS)}")
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if not self.labels:
            raise ValueError(f"head {self.name!r} has no labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"head {self.name!r} repeats a label: {list(self.labels)}")
        if self.activation not in ACTIVATIONS[self.kind]:
            raise ValueError(
                f"head {self.name!r}: a {self.kind} head's activation must be "
                f"{' or '.join(ACTIVATIONS[self.kind])}; got {self.activation!r}"
            )
        parameters = DECODE_PARAMETERS[self.kind]
        decode = self.decode
        if decode is None:
            decode = parameters.from_dict({})
        elif isinstance(decode, Mapping):
            decode = parameters.from_dict(decode)
        elif not isinstance(decode, parameters):
            raise ValueError(f"head {self.name!r}: decode must be a {parameters.__name__}; got {type(decode).__name__}")
        object.__setattr__(self, "decode", decode)
        if self.tensor is None and not isinstance(decode, DetectionDecode):
            object.__setattr__(self, "tensor", self.name)
        object.__setattr__(self, "flags", tuple(self.flags))
        _check_codes(self.name, self.labels, self.codes)
        for rule in self.flags:
            if rule.head != self.name:
                raise ValueError(f"flag {rule.code} is listed under head {self.name!r} but reads head {rule.head!r}")

    @property
    def tensors(self) -> tuple[str, ...]:
        """The network output tensors this head reads."""
        if isinstance(self.decode, DetectionDecode):
            return self.decode.tensors
        return (self.tensor,)

    def to_document(self) -> dict[str, Any]:
        """The head as the manifest writes it, one entry of ``outputs``."""
        document: dict[str, Any] = {"name": self.name}
        if not isinstance(self.decode, DetectionDecode):
            document["tensor"] = self.tensors[0]
        document.update({"kind": self.kind, "labels": list(self.labels), "activation": self.activation})
        decode = decode_document(self.decode)
        if decode:
            document["decode"] = decode
        if self.codes:
            document["codes"] = dict(self.codes)
        if self.flags:
            document["flags"] = [rule.to_document() for rule in self.flags]
        return document


_CODE_FIELDS = {"value", "scheme", "meaning"}


def _check_codes(head: str, labels: tuple[str, ...], codes: Mapping[str, Any]) -> None:
    """Refuse a ``codes`` table naming a label the head does not have, or a code without its
    value, scheme or meaning (DICOM outputs need all three, PS3.3 8.8)."""
    for label, code in codes.items():
        if label not in labels:
            raise ValueError(f"head {head!r}: codes name label {label!r}, which is not one of {list(labels)}")
        if not isinstance(code, Mapping) or not _CODE_FIELDS <= set(code) \
                or not all(isinstance(code[key], str) and code[key].strip() for key in _CODE_FIELDS):
            raise ValueError(f"head {head!r}: the code of label {label!r} must give a non-empty value, scheme and "
                             f"meaning as text; got {code!r}")
