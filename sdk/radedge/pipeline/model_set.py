"""``ModelSet``: several models on one console, each image routed to every model that applies.

An image is read once. Each model whose scope (modality, body part, presentation intent,
SOP class) accepts it analyses it; models asking for the same intensity handling share one
lookup table. A second-stage model (manifest ``input_region``) analyses the region a
first-stage model found (a box, or the bounding box of a mask, with a margin), read
through the preprocess op's crop, its results mapped back to the source image. An image
no model accepts is "not analysed" with the reason: a result, not an error. So is an image
in some model's scope that holds nothing to analyse (``NotAnalysableError``: intensities
without meaning, a uniform image, too few pixels), never a flag decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset

from ..bundle import Bundle, bundled_bundle_paths
from ..bundle.signing import TrustedKey, load_trusted_keys
from ..errors import BundleError, NotAnalysableError, invalid_argument
from ..heads import DetectionResult, SegmentationResult
from ..intensity import IntensityLut
from ..io import read_image
from ..io.reader import with_transfer_syntax
from ..io.image import Image
from ..results import ImageAnalysis, Prediction
from ..spec.geometry import Crop, grow_box
from ..spec.manifest import InputRegion, IntensitySpec
from .model import Model, check_load_arguments, check_predict_arguments, describe_image, describe_source, load_model
from .scope import scope_refusal
from .timer import StageTimer


class ModelSet:
    """Models that run side by side on every image, each where its scope fits.

    ``models`` are kept in the given order, except that a second-stage model comes after
    the model that feeds it, which must be in the set. Model ids must differ. Safe to call
    from several threads, as each ``Model`` is.
    """

    def __init__(self, models: Sequence[Model]):
        by_id: dict[str, Model] = {}
        for model in models:
            if model.model_id in by_id:
                raise BundleError(f"two bundles are model {model.model_id!r}; load each model once")
            by_id[model.model_id] = model
        for model in by_id.values():
            needed = model.manifest.input_region
            if needed is None:
                continue
            source = by_id.get(needed.model)
            if source is None:
                raise BundleError(
                    f"{model.model_id} analyses the region that {needed.model} finds, but {needed.model} is not "
                    f"loaded; load both bundles together ({needed.model}'s and {model.model_id}'s)"
                )
            try:
                head = source.manifest.head(needed.head)
            except KeyError:
                raise BundleError(f"{model.model_id}'s input_region reads head {needed.head!r}, which {needed.model} "
                                  f"does not have") from None
            if head.kind not in ("detection", "segmentation"):
                raise BundleError(f"{model.model_id}'s input_region reads {needed.model}'s {head.kind} head "
                                  f"{needed.head!r}; a region comes from a detection or segmentation head")
            if needed.label is not None and needed.label not in head.labels:
                raise BundleError(f"{model.model_id}'s input_region label {needed.label!r} is not one of {head.labels}")
        self.models: tuple[Model, ...] = tuple(_first_stages_first(list(by_id.values())))

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __getitem__(self, model_id: str) -> Model:
        for model in self.models:
            if model.model_id == model_id:
                return model
        raise KeyError(f"no model {model_id!r} is loaded; loaded: {[m.model_id for m in self.models]}")

    def warm_up(self) -> None:
        """Run every model once on a blank input, so the first image is timed like the rest."""
        for model in self.models:
            model.warm_up()

    def predict(
        self,
        source: Any,
        *,
        label: str | None = None,
        check_scope: bool = True,
        reader: Callable[[Any], Image] = read_image,
        read_ms: float | None = None,
        transfer_syntax_uid: str | None = None,
    ) -> ImageAnalysis:
        """Read ``source`` (a path, DICOM bytes, a pydicom Dataset or a ``radedge.io.Image``)
        once and run every model that applies to it. ``label`` names the input in the
        result (default: the path). ``check_scope=False`` runs every model whatever the
        image's metadata says. ``reader`` reads a source that is not an ``Image`` yet
        (default ``read_image``; ``IsolatedReader(...).read`` to read in a worker process
        with a time budget), its time counted as the ``read`` stage. ``read_ms``: for an ``Image``
        read ahead of time (``radedge.pipeline.read_ahead``), how long its reading took, counted
        as the ``read`` stage and in the total. A model that finds nothing to analyse in the image
        (``NotAnalysableError``) is recorded in ``not_analysable`` with the reason, and so is
        a second-stage model it feeds. ``transfer_syntax_uid``: for a pydicom Dataset, the
        syntax its Pixel Data is in (see ``radedge.io.read_image``). A bad argument raises
        ``InvalidArgumentError`` naming it."""
        check_predict_arguments("ModelSet.predict", label, check_scope)
        if not callable(reader):
            raise invalid_argument("ModelSet.predict", "reader", reader, "a callable taking the source, returning an Image")
        if read_ms is not None and (isinstance(read_ms, bool) or not isinstance(read_ms, (int, float))
                                    or not 0 <= read_ms < float("inf")):
            raise invalid_argument("ModelSet.predict", "read_ms", read_ms, "None or milliseconds, a finite number >= 0")
        if transfer_syntax_uid is not None:
            if not isinstance(source, Dataset):
                raise invalid_argument(
                    "ModelSet.predict", "transfer_syntax_uid", transfer_syntax_uid,
                    f"None for a {type(source).__name__} source: only a pydicom Dataset may lack its transfer syntax")
            source = with_transfer_syntax(source, transfer_syntax_uid)
        timer = StageTimer()
        image = source if isinstance(source, Image) else reader(source)
        timer.lap("read")
        if read_ms is not None:
            timer.timings["read"] += read_ms
        name = describe_source(source, label)
        # A table, or why the image has nothing to analyse under it, per intensity handling.
        tables: dict[IntensitySpec, IntensityLut | NotAnalysableError] = {}
        predictions: dict[str, Prediction] = {}
        not_applied: dict[str, str] = {}
        not_analysable: dict[str, str] = {}
        notes: list[str] = []
        for model in self.models:
            if check_scope:
                refusal, model_notes = scope_refusal(model.manifest, image, mode=model.scope)
                if refusal is not None:
                    not_applied[model.model_id] = refusal.reason
                    continue
            else:
                model_notes = ["model scope not checked (check_scope=False)"]
            notes.extend(note for note in model_notes if note not in notes)
            region = None
            needed = model.manifest.input_region
            if needed is not None:
                if needed.model in not_analysable:
                    not_analysable[model.model_id] = not_analysable[needed.model]
                    continue
                region, reason = _region(needed, predictions, not_applied, image)
                if region is None:
                    not_applied[model.model_id] = reason
                    continue
            try:
                model.check_size(image, region)
            except NotAnalysableError as exc:
                not_analysable[model.model_id] = str(exc)
                continue
            model_timer = StageTimer()
            lut = tables.get(model.manifest.intensity)
            if lut is None:
                try:
                    lut = model.build_lut(image)
                except NotAnalysableError as exc:
                    lut = exc
                tables[model.manifest.intensity] = lut
                model_timer.lap("lut")
            if isinstance(lut, NotAnalysableError):
                not_analysable[model.model_id] = str(lut)
                continue
            predictions[model.model_id] = model.analyse(
                image, lut, timer=model_timer, notes=model_notes, source=name, region=region
            )
        timings = {
            "read": timer.timings["read"],
            "lut": sum(p.timings_ms.get("lut", 0.0) for p in predictions.values()),
        }
        timings["total"] = timer.finish()["total"] + (read_ms or 0.0)
        return ImageAnalysis(
            source=name,
            predictions=predictions,
            not_applied=not_applied,
            image=describe_image(image, None, notes),
            timings_ms=timings,
            not_analysable=not_analysable,
            _display=next(iter(predictions.values()))._display if predictions else None,
            _unanalysed=None if predictions else image,
            _header=image.header,
        )


def load_models(
    bundles: Sequence[str | os.PathLike | Bundle] | None = None,
    *,
    precision: str | None = None,
    trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None,
    backend: str = "onnxruntime",
    threads: int = 0,
    warm_up: bool = True,
    scope: str = "lenient",
) -> ModelSet:
    """Load and verify several bundles (``None``: every model bundled with radedge) as a
    ``ModelSet``, each at ``precision`` and, when ``trusted_keys`` are given, each signed by
    one of them (see ``load_model``). ``threads`` caps each model's CPU threads (0: all cores);
    ``scope`` is each model's scope mode (``load_model``). Every argument is checked before a
    bundle is read (``InvalidArgumentError`` naming it); ``bundles`` must be a list or tuple, so
    a single path is not taken for a sequence of letters."""
    check_load_arguments("load_models", precision=precision, backend=backend, threads=threads, warm_up=warm_up,
                         scope=scope)
    if bundles is not None and not isinstance(bundles, (list, tuple)):
        raise invalid_argument("load_models", "bundles", bundles,
                               "a list or tuple of bundle paths or Bundles (load_model loads a single one), or None")
    for entry in bundles or ():
        if not isinstance(entry, (str, os.PathLike, Bundle)):
            raise invalid_argument("load_models", "bundles", entry,
                                   "a list or tuple whose items are bundle paths (str or os.PathLike) or Bundles")
    paths = bundled_bundle_paths() if bundles is None else list(bundles)
    if not paths:
        if bundles is not None:
            raise invalid_argument("load_models", "bundles", [], "at least one bundle, or None for every bundled model")
        raise BundleError("no bundles given, and no model is bundled with this radedge")
    if trusted_keys is not None:
        # Read the key files once, and refuse a bad one before any bundle is opened.
        trusted_keys = list(load_trusted_keys(trusted_keys).values())
    return ModelSet([
        load_model(path, precision=precision, trusted_keys=trusted_keys, backend=backend, threads=threads,
                   warm_up=warm_up, scope=scope)
        for path in paths
    ])


def _first_stages_first(models: list[Model]) -> list[Model]:
    """The models in order, each second-stage model moved after the model that feeds it."""
    ordered: list[Model] = []
    placed: set[str] = set()
    pending = list(models)
    while pending:
        for model in pending:
            needed = model.manifest.input_region
            if needed is None or needed.model in placed:
                ordered.append(model)
                placed.add(model.model_id)
                pending.remove(model)
                break
        else:
            raise BundleError(
                "the loaded models feed each other in a circle through input_region: "
                + ", ".join(f"{m.model_id} <- {m.manifest.input_region.model}" for m in pending)
            )
    return ordered


def _region(
    needed: InputRegion, predictions: dict[str, Prediction], not_applied: dict[str, str], image: Image
) -> tuple[Crop | None, str]:
    """The source rectangle a second-stage model analyses, or None and why there is none."""
    upstream = predictions.get(needed.model)
    if upstream is None:
        why = not_applied.get(needed.model, "it did not run")
        return None, f"its input region comes from {needed.model}, which did not analyse this image ({why})"
    result = upstream.heads[needed.head]
    box = None
    if isinstance(result, DetectionResult):
        boxes = result.of(needed.label) if needed.label else result.boxes
        if boxes:
            box = boxes[0].xyxy
    elif isinstance(result, SegmentationResult):
        stats = result.region(needed.label or result.labels[0])
        if stats.pixel_count > 0:
            box = tuple(float(v) for v in stats.bbox)
    if box is None:
        what = needed.label or "region"
        return None, f"{needed.model} found no {what} (head {needed.head!r}) for it to analyse"
    return grow_box(box, needed.margin, image.rows, image.columns), ""

