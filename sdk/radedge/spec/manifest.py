"""A bundle's ``manifest.json`` as plain dataclasses: ``Manifest.from_document`` parses and
checks it, so a malformed manifest is refused when the bundle loads, never on the first image.

Top-level fields: ``model`` (id, version, description), ``input`` (name, shape [N, C, H, W],
dtype), ``preprocessing`` (VOI, window, resize, padding, mean, std), ``outputs`` (the heads,
see ``radedge.spec.heads``; their ``flags``, see ``radedge.spec.flags``), ``display_head``
(the head whose verdict the console shows first), ``input_region`` (a second-stage model's
input: a region another model found), ``scope``, ``provenance``, ``files`` and
``manifest_sha256`` (see ``radedge.bundle``), ``precisions`` (the model files, one per
precision, with the gate figures each passed) and ``gate`` (the limits they were held to),
see ``radedge.spec.precision``, and ``license`` (the terms the model is distributed under).

Schema versions. In schema 2 (what this radedge writes) each output has a ``name``, what the
head means (``"tumor"``, ``"lesion"``: snake_case, unique), which every result, flag,
``display_head``, ``input_region`` and gate figure is keyed by, and a ``tensor``, the ONNX
output it reads (detection heads name theirs in ``decode``). In schema 1 an output's ``name``
was also its ONNX output; such a manifest still loads, upgraded by ``upgrade_document``: the
head is named by ``head_name_for_output`` (the output name less a trailing ``_logits``),
reads the output it named, and every reference to it is renamed alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .flags import Condition, FlagRule
from .heads import HeadSpec
from .precision import GateThresholds, Precision, parse_precisions
from .preprocess import PreprocessSpec
from .scope import Scope
from .window import Percentile, Window, check_window

SCHEMA_VERSION = 2
#: The schema versions this radedge reads; 1 is upgraded on load (``upgrade_document``).
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
#: A schema 2 head name: lower-case snake_case, as results and JSON keys use it.
HEAD_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_LOGITS_SUFFIX = "_logits"


def head_name_for_output(output: str, taken: Sequence[str] = ()) -> str:
    """The head name a schema 1 output named ``output`` gets: ``output`` less a trailing
    ``_logits`` (``tumor_logits`` -> ``tumor``), or ``output`` itself when nothing would be
    left or the shorter name is in ``taken`` (another output's name)."""
    if output.endswith(_LOGITS_SUFFIX) and len(output) > len(_LOGITS_SUFFIX):
        shorter = output[: -len(_LOGITS_SUFFIX)]
        if shorter not in taken:
            return shorter
    return output


def upgrade_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A schema 1 manifest document as schema 2 (a schema 2 one is returned as a copy).

    Each output is renamed by ``head_name_for_output`` and reads the tensor it read before;
    ``display_head``, flag ``requires`` and ``locate_with``, a cam's ``decode.explains``, the
    gate figures of each precision and the labelled heads of the provenance follow the
    rename. ``input_region.head`` names a head of another model, renamed by the same rule.
    """
    upgraded = dict(document)
    if document.get("schema_version") != 1:
        return upgraded
    names = [out.get("name") for out in document.get("outputs", ())]
    renamed: dict[str, str] = {}
    outputs = []
    for out in document.get("outputs", ()):
        old = out.get("name")
        if not isinstance(old, str):
            outputs.append(dict(out))
            continue
        new = head_name_for_output(old, taken=[n for n in names if n != old])
        renamed[old] = new
        tensor = {} if out.get("kind") == "detection" else {"tensor": out.get("tensor") or old}
        outputs.append({"name": new, **tensor, **{k: v for k, v in out.items() if k not in ("name", "tensor")}})
    for out in outputs:
        if isinstance(out.get("decode"), Mapping) and out["decode"].get("explains") in renamed:
            out["decode"] = {**out["decode"], "explains": renamed[out["decode"]["explains"]]}
        rules = []
        for rule in out.get("flags", ()):
            rule = dict(rule)
            if "locate_with" in rule:
                rule["locate_with"] = renamed.get(rule["locate_with"], rule["locate_with"])
            if "requires" in rule:
                rule["requires"] = [{**c, "head": renamed.get(c.get("head"), c.get("head"))} for c in rule["requires"]]
            rules.append(rule)
        if "flags" in out:
            out["flags"] = rules
    upgraded["outputs"] = outputs
    if document.get("display_head") is not None:
        upgraded["display_head"] = renamed.get(document["display_head"], document["display_head"])
    if isinstance(document.get("input_region"), Mapping) and "head" in document["input_region"]:
        region = document["input_region"]
        upgraded["input_region"] = {**region, "head": head_name_for_output(region["head"])}
    if isinstance(document.get("precisions"), Mapping):
        upgraded["precisions"] = {
            name: rename_gate_heads(entry, renamed) for name, entry in document["precisions"].items()
        }
    if isinstance(document.get("provenance"), Mapping):
        upgraded["provenance"] = rename_gate_heads(document["provenance"], renamed)
    upgraded["schema_version"] = SCHEMA_VERSION
    return upgraded


def rename_gate_heads(record: Any, renamed: Mapping[str, str]) -> Any:
    """``record`` (a precision's entry, a gate report, the provenance) with the head names of
    its gate figures (``heads``) and labelled heads (``labelled_heads``) renamed; figures
    keyed by ONNX output (``max_abs_difference``) keep their keys."""
    if isinstance(record, Mapping):
        copy = {}
        for key, value in record.items():
            if key == "heads" and isinstance(value, Mapping):
                value = {renamed.get(head, head): rename_gate_heads(figures, renamed)
                         for head, figures in value.items()}
            elif key == "labelled_heads" and isinstance(value, list):
                value = [renamed.get(head, head) for head in value]
            else:
                value = rename_gate_heads(value, renamed)
            copy[key] = value
        return copy
    if isinstance(record, list):
        return [rename_gate_heads(value, renamed) for value in record]
    return record


@dataclass(frozen=True)
class ModelLicense:
    """The terms a model is distributed under (the manifest's ``license``): ``id``, an SPDX
    licence identifier (``Apache-2.0``), and ``terms``, what a user must know in one or two
    sentences (what the model was trained on, what it must not be used for)."""

    id: str
    terms: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip() or not isinstance(self.terms, str) \
                or not self.terms.strip():
            raise ValueError(f'license must be {{"id": <SPDX identifier>, "terms": <text>}}; got {self!r}')

    def to_document(self) -> dict[str, str]:
        return {"id": self.id, "terms": self.terms}


@dataclass(frozen=True)
class IntensitySpec:
    """How stored values were turned into [0, 1] intensities in training.

    ``voi``: ``"file"`` uses the image's own VOI (VOI LUT Sequence, else its window at
    ``voi_index``), ``"none"`` uses the min-max of modality values, a ``Percentile``
    (manifest ``"voi": {"percentile": [0.5, 99.5]}``) the window between those
    percentiles of the image's own modality values, and an explicit ``window`` overrides
    them all.
    """

    voi: Literal["file", "none"] | Percentile = "file"
    voi_index: int = 0
    window: Window | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            # A window the VOI LUT Function does not allow is refused when the bundle loads.
            check_window(self.window)


@dataclass(frozen=True)
class InputRegion:
    """A second-stage model's input: the region that head ``head`` of model ``model`` found.

    A detection head gives its best box of ``label`` (default: of any class); a segmentation
    head the bounding box of ``label``'s region (default: its first label). The region grows
    by ``margin`` of its size on every side (clipped to the image) and is read through the
    preprocess op's crop; results map back to the source image. When the first model finds
    nothing, the second is not analysed, and says why.
    """

    model: str
    head: str
    label: str | None = None
    margin: float = 0.1

    def __post_init__(self) -> None:
        margin = float(self.margin)
        if not (math.isfinite(margin) and 0.0 <= margin <= 2.0):
            raise ValueError(f"input_region.margin must be 0 to 2 (a fraction of the region's size); got {self.margin!r}")
        object.__setattr__(self, "margin", margin)


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model_id: str
    model_version: str
    description: str
    input_name: str
    input_shape: tuple[int, int, int, int]  # N, C, H, W
    preprocess: PreprocessSpec
    intensity: IntensitySpec
    heads: tuple[HeadSpec, ...]
    scope: Scope
    provenance: dict[str, Any]
    files: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)
    display_head: str | None = None
    input_region: InputRegion | None = None
    precisions: dict[str, Precision] = field(default_factory=lambda: parse_precisions(None))
    gate: GateThresholds = field(default_factory=GateThresholds)
    license: ModelLicense | None = None

    def head(self, name: str) -> HeadSpec:
        for spec in self.heads:
            if spec.name == name:
                return spec
        raise KeyError(f"the manifest has no head named {name!r}; it has {[h.name for h in self.heads]}")

    @property
    def flag_rules(self) -> tuple[FlagRule, ...]:
        return tuple(rule for head in self.heads for rule in head.flags)

    @property
    def tensors(self) -> tuple[str, ...]:
        """Every network output tensor the heads read."""
        return tuple(dict.fromkeys(name for head in self.heads for name in head.tensors))

    @classmethod
    def create(
        cls,
        *,
        model_id: str,
        model_version: str,
        description: str,
        preprocess: PreprocessSpec,
        heads: Sequence[HeadSpec],
        scope: Scope,
        intensity: IntensitySpec | None = None,
        input_name: str = "image",
        display_head: str | None = None,
        input_region: InputRegion | None = None,
        provenance: Mapping[str, Any] | None = None,
        precisions: Mapping[str, Precision] | None = None,
        gate: GateThresholds | None = None,
        license: ModelLicense | None = None,
    ) -> Manifest:
        """A manifest built from the schema's own classes (what an exporter writes), checked
        exactly as a loaded one is: it goes through ``to_document`` and ``from_document``."""
        draft = cls(
            schema_version=SCHEMA_VERSION,
            model_id=model_id,
            model_version=model_version,
            description=description,
            input_name=input_name,
            input_shape=(1, preprocess.channels, preprocess.height, preprocess.width),
            preprocess=preprocess,
            intensity=intensity or IntensitySpec(),
            heads=tuple(heads),
            scope=scope,
            provenance=dict(provenance or {}),
            files={},
            raw={},
            display_head=display_head,
            input_region=input_region,
            precisions=dict(precisions) if precisions else parse_precisions(None),
            gate=gate or GateThresholds(),
            license=license,
        )
        return cls.from_document({**draft.to_document(), "schema_version": SCHEMA_VERSION})

    def to_document(self) -> dict[str, Any]:
        """The manifest as ``manifest.json`` holds it, less ``schema_version``, ``files`` and
        ``manifest_sha256``, which ``radedge.bundle.write_bundle`` fills in."""
        pre = self.preprocess
        preprocessing: dict[str, Any] = {
            "voi": self.intensity.voi if isinstance(self.intensity.voi, str)
            else {"percentile": [self.intensity.voi.low, self.intensity.voi.high]},
            "voi_index": self.intensity.voi_index,
        }
        if self.intensity.window is not None:
            window = self.intensity.window
            preprocessing["window"] = {"center": window.center, "width": window.width, "function": window.function}
        preprocessing.update(
            {"resize": pre.resize, "pad_value": pre.pad_value, "mean": list(pre.mean), "std": list(pre.std),
             "channels": pre.channels}
        )
        document: dict[str, Any] = {
            "model": {"id": self.model_id, "version": self.model_version, "description": self.description},
            "input": {"name": self.input_name, "shape": list(self.input_shape), "dtype": pre.dtype, "layout": "NCHW"},
            "preprocessing": preprocessing,
            "outputs": [head.to_document() for head in self.heads],
        }
        if self.display_head is not None:
            document["display_head"] = self.display_head
        if self.input_region is not None:
            region = self.input_region
            document["input_region"] = {"model": region.model, "head": region.head, "margin": region.margin,
                                        **({"label": region.label} if region.label is not None else {})}
        document["scope"] = {
            name: list(getattr(self.scope, name))
            for name in ("modalities", "presentation_intents", "body_parts", "sop_classes")
            if getattr(self.scope, name)
        }
        document["precisions"] = {name: entry.to_document() for name, entry in self.precisions.items()}
        document["gate"] = self.gate.to_document()
        document["provenance"] = dict(self.provenance)
        if self.license is not None:
            document["license"] = self.license.to_document()
        return document

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Manifest:
        """Parse a manifest document of any supported schema version (schema 1 is upgraded, see
        ``upgrade_document``; ``schema_version`` keeps the document's own); raises KeyError,
        TypeError or ValueError saying what is wrong."""
        schema_version = int(doc["schema_version"])
        if schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {schema_version} is not one of {SUPPORTED_SCHEMA_VERSIONS}")
        raw = doc
        doc = upgrade_document(doc)
        model = doc["model"]
        inp = doc["input"]
        pre = doc.get("preprocessing", {})
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4:
            raise ValueError(f"input.shape must be [N, C, H, W], got {inp['shape']}")
        preprocess = PreprocessSpec(
            height=shape[2],
            width=shape[3],
            resize=pre.get("resize", "letterbox"),
            pad_value=float(pre.get("pad_value", 0.0)),
            mean=tuple(float(v) for v in pre.get("mean", (0.0,))),
            std=tuple(float(v) for v in pre.get("std", (1.0,))),
            channels=shape[1],
            dtype=inp.get("dtype", "float32"),
        )
        window = pre.get("window")
        intensity = IntensitySpec(
            voi=_voi(pre.get("voi", "file")),
            voi_index=int(pre.get("voi_index", 0)),
            window=Window(float(window["center"]), float(window["width"]), window.get("function", "LINEAR"))
            if window
            else None,
        )
        heads = tuple(_head(out) for out in doc["outputs"])
        _check_heads(heads)
        if schema_version >= 2:
            for head in heads:
                if not HEAD_NAME.fullmatch(head.name):
                    raise ValueError(
                        f"output {head.name!r}: a head name is what the head means in snake_case "
                        "(lower-case letters, digits, single underscores; e.g. 'tumor', 'lesion'); "
                        "put the ONNX output it reads in 'tensor'"
                    )
        license = doc.get("license")
        if license is not None:
            if not isinstance(license, Mapping) or set(license) != {"id", "terms"}:
                raise ValueError(f'license must be {{"id": <SPDX identifier>, "terms": <text>}}; got {license!r}')
            license = ModelLicense(license["id"], license["terms"])
        display_head = doc.get("display_head")
        if display_head is not None and display_head not in {h.name for h in heads}:
            raise ValueError(f"display_head {display_head!r} is not one of the heads {[h.name for h in heads]}")
        region = doc.get("input_region")
        if region is not None:
            unknown = sorted(set(region) - {"model", "head", "label", "margin"})
            if unknown:
                raise ValueError(f"input_region has unknown {', '.join(unknown)}; it takes model, head, label, margin")
            region = InputRegion(**region)
            if region.model == model["id"]:
                raise ValueError("input_region.model names this model itself; it must name the first-stage model")
        scope = doc.get("scope", {})
        unknown = sorted(set(scope) - {"modalities", "presentation_intents", "body_parts", "sop_classes"})
        if unknown:
            raise ValueError(f"scope has unknown {', '.join(unknown)}")
        precisions = parse_precisions(doc.get("precisions"))
        if "fp32" not in precisions:
            raise ValueError("precisions has no fp32 entry; every bundle carries its FP32 model")
        return cls(
            schema_version=schema_version,
            model_id=model["id"],
            model_version=model["version"],
            description=model.get("description", ""),
            input_name=inp["name"],
            input_shape=shape,  # type: ignore[arg-type]
            preprocess=preprocess,
            intensity=intensity,
            heads=heads,
            scope=Scope(**{name: tuple(values) for name, values in scope.items()}),
            provenance=dict(doc.get("provenance", {})),
            files=dict(doc.get("files", {})),
            raw=dict(raw),
            display_head=display_head,
            input_region=region,
            precisions=precisions,
            gate=GateThresholds.from_document(doc.get("gate", {})),
            license=license,
        )


def _voi(value: Any) -> str | Percentile:
    """The manifest's ``preprocessing.voi``: "file", "none" or {"percentile": [low, high]}."""
    if isinstance(value, dict):
        if set(value) != {"percentile"}:
            raise ValueError(f'preprocessing.voi as an object must be {{"percentile": [low, high]}}; got {value}')
        bounds = value["percentile"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ValueError(f"preprocessing.voi.percentile must be [low, high] percentages; got {bounds!r}")
        return Percentile(bounds[0], bounds[1])
    if value not in ("file", "none"):
        raise ValueError(f'preprocessing.voi must be "file", "none" or {{"percentile": [low, high]}}; got {value!r}')
    return value


_OUTPUT_FIELDS = {"name", "kind", "labels", "activation", "decode", "flags", "tensor", "codes"}
_FLAG_FIELDS = {"code", "title", "label", "threshold", "requires", "locate_with", "operating_point"}


def _head(out: Mapping[str, Any]) -> HeadSpec:
    unknown = sorted(set(out) - _OUTPUT_FIELDS)
    if unknown:
        raise ValueError(f"output {out.get('name')!r} has unknown {', '.join(unknown)}")
    name = out["name"]
    rules = []
    for rule in out.get("flags", ()):
        unknown = sorted(set(rule) - _FLAG_FIELDS)
        if unknown:
            raise ValueError(f"flag {rule.get('code')!r} has unknown {', '.join(unknown)}")
        rules.append(
            FlagRule(
                code=rule["code"],
                title=rule["title"],
                head=name,
                label=rule["label"],
                threshold=rule["threshold"],
                requires=tuple(Condition(c["head"], c["label"], c["threshold"]) for c in rule.get("requires", ())),
                locate_with=rule.get("locate_with"),
                operating_point=dict(rule.get("operating_point", {})),
            )
        )
    return HeadSpec(
        name=name,
        kind=out["kind"],
        labels=tuple(out["labels"]),
        activation=out["activation"],
        decode=dict(out.get("decode", {})),
        flags=tuple(rules),
        tensor=out.get("tensor"),
        codes=dict(out.get("codes", {})),
    )


def _check_heads(heads: tuple[HeadSpec, ...]) -> None:
    """What ties heads together: unique names, flag conditions on existing heads and labels,
    cam heads explaining a classification head with the same classes."""
    by_name: dict[str, HeadSpec] = {}
    for head in heads:
        if head.name in by_name:
            raise ValueError(f"two outputs are named {head.name!r}")
        by_name[head.name] = head
    for head in heads:
        if head.kind == "cam":
            explained = by_name.get(head.decode.explains)
            if explained is None or explained.kind != "classification":
                raise ValueError(f"cam head {head.name!r} explains {head.decode.explains!r}, which is not a classification head")
            if explained.labels != head.labels:
                raise ValueError(
                    f"cam head {head.name!r} has labels {list(head.labels)}, but the head it explains has "
                    f"{list(explained.labels)}; a cam has one map per class"
                )
            if head.decode.label is not None and head.decode.label not in head.labels:
                raise ValueError(f"cam head {head.name!r}: decode.label {head.decode.label!r} is not one of its labels")
        for rule in head.flags:
            for condition in rule.conditions:
                target = by_name.get(condition.head)
                if target is None:
                    raise ValueError(f"flag {rule.code} reads head {condition.head!r}, which the manifest does not have")
                if target.kind == "cam":
                    raise ValueError(
                        f"flag {rule.code} reads cam head {target.name!r}; a cam explains another head, flag on that one"
                    )
                if condition.label not in target.labels:
                    raise ValueError(f"flag {rule.code} refers to label {condition.label!r}, not one of {target.labels}")
            if rule.locate_with is not None:
                locator = by_name.get(rule.locate_with)
                if locator is None or locator.kind != "heatmap":
                    raise ValueError(f"flag {rule.code}: locate_with {rule.locate_with!r} is not a heatmap head")
            elif rule.needs_where and head.kind != "heatmap":
                raise ValueError(
                    f"flag {rule.code}: its title says {{where}}, but a {head.kind} finding has no place name; "
                    "give locate_with (a heatmap head of labelled landmarks) or drop {where}"
                )
