"""``Model``: one verified bundle on a backend, one image in, one ``Prediction`` out.

read (decode the file) -> scope -> lut (one intensity table) -> plan (preprocess ->
inference -> decode heads at source geometry) -> flags, every stage timed.

An image that decodes but holds nothing to analyse (intensities without meaning, a uniform
image, too few pixels; ``analysable.py``) raises ``NotAnalysableError`` here, as an image out
of scope raises ``OutOfScopeError``: a ``Prediction`` is a model's conclusion and has no
"not analysed" state. ``ModelSet`` turns both into a "not analysed" result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..backends import BACKENDS, create_backend
from ..bundle import Bundle, load_bundle
from ..bundle.signing import TrustedKey
from ..errors import (
    InputError,
    PrecisionNotInBundleError,
    check_choice,
    check_count,
    check_flag,
    invalid_argument,
)
from ..heads import HeadResult
from ..intensity import IntensityLut, build_lut
from ..io import read_image
from ..io.image import Image
from ..results import DisplayImage, Prediction, evaluate_flags
from ..spec.geometry import Crop, ResizeGeometry
from ..spec.manifest import Manifest
from ..spec.precision import PRECISION_FILES
from .analysable import check_contrast, check_signal, check_size
from .plan import CpuPlan, ExecutionPlan
from .scope import SCOPE_MODES, check_scope
from .timer import StageTimer


class Model:
    """A verified bundle on an execution plan, ready to ``predict``.

    Safe to call from several threads: the backend session is shared, each thread gets
    its own buffers. ``precision`` names the bundle's model file the plan runs (manifest
    ``precisions``).
    """

    def __init__(self, bundle: Bundle, plan: ExecutionPlan, *, threads: int = 0, precision: str = "fp32",
                 scope: str = "lenient"):
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        self.plan = plan
        self.backend = plan.backend
        self.threads = threads
        self.precision = precision
        self.scope = check_choice("Model", "scope", scope, SCOPE_MODES)

    @property
    def model_id(self) -> str:
        """The manifest's model id, e.g. ``bone-tumor``."""
        return self.manifest.model_id

    def warm_up(self) -> None:
        """Run the backend once on a blank input, so the first image is timed like the rest."""
        self.plan.warm_up()

    def check_scope(self, image: Image) -> list[str]:
        """Refuse an image outside the manifest's intended scope (``OutOfScopeError``; with
        ``scope="strict"``, ``ScopeMetadataMissingError`` for one lacking an attribute the scope
        names); return notes on what could not be checked."""
        return check_scope(self.manifest, image, mode=self.scope)

    def check_size(self, image: Image, region: Crop | None = None) -> None:
        """Refuse an image (or its ``region``) with too few pixels for the model's input
        (``NotAnalysableError``, see ``radedge.pipeline.analysable``)."""
        if region is None:
            check_size(self.manifest, image.rows, image.columns)
        else:
            check_size(self.manifest, int(region[3]), int(region[2]), region=True)

    def build_lut(self, image: Image) -> IntensityLut:
        """The stored value -> [0, 1] table this model was trained with, for ``image``;
        ``NotAnalysableError`` when the image holds nothing to analyse under it (``intensity_lut``)."""
        return intensity_lut(self.manifest, image, threads=self.threads)

    def predict(
        self, source: Any, *, label: str | None = None, check_scope: bool = True, region: Crop | None = None,
        transfer_syntax_uid: str | None = None,
    ) -> Prediction:
        """Run the whole chain on ``source``: a file path, bytes, a binary file object, a
        pydicom Dataset or a ``radedge.io.Image``. ``label`` names the input in the result
        (defaults to the path, never to anything from the DICOM header). ``region``: the (x, y,
        width, height) source rectangle to analyse, which a second-stage model (manifest
        ``input_region``) needs; ``radedge.load_models`` finds it with the first-stage model.
        ``transfer_syntax_uid``: for a Dataset, the syntax its Pixel Data is in (see
        ``radedge.io.read_image``).

        Raises ``OutOfScopeError`` for an image outside the model's scope and
        ``NotAnalysableError`` for one with nothing to analyse (module docstring);
        ``InvalidArgumentError`` for a bad ``label``, ``check_scope`` or ``region``."""
        check_predict_arguments("Model.predict", label, check_scope)
        region = check_region(region)
        if isinstance(source, Image) and transfer_syntax_uid is not None:
            raise invalid_argument("Model.predict", "transfer_syntax_uid", transfer_syntax_uid,
                                   "None for an Image, which is already decoded")
        timer = StageTimer()
        image = source if isinstance(source, Image) else read_image(source, transfer_syntax_uid=transfer_syntax_uid)
        if region is not None:
            check_region_inside(region, image)
        timer.lap("read")
        notes = self.check_scope(image) if check_scope else ["model scope not checked (check_scope=False)"]
        # Before the table: a 1 x 1 image is too small before it is uniform.
        self.check_size(image, region)
        lut = self.build_lut(image)
        timer.lap("lut")
        return self.analyse(image, lut, timer=timer, notes=notes, source=describe_source(source, label), region=region)

    def analyse(
        self,
        image: Image,
        lut: IntensityLut,
        *,
        timer: StageTimer,
        notes: list[str],
        source: str,
        region: Crop | None = None,
    ) -> Prediction:
        """``image`` (or its ``region``) through the plan and the flag rules, with a table
        already built; ``timer`` goes on from the caller's laps. The caller has checked the
        scope and the size (``check_scope``, ``check_size``), as ``predict`` does."""
        if region is None and self.manifest.input_region is not None:
            needed = self.manifest.input_region
            raise InputError(
                f"{self.model_id} is a second-stage model: it analyses the region head {needed.head!r} of "
                f"{needed.model} finds. Load both with radedge.load_models([...]), "
                "or pass region=(x, y, width, height)"
            )
        geometry, heads = self.plan.run(image, lut, region, timer)
        return conclude(
            self.manifest, heads, timer=timer, source=source, geometry=geometry,
            image=describe_image(image, lut, notes), provenance=self.provenance(),
            display=DisplayImage(image.pixels, lut.table, lut.first_stored_value), header=image.header,
        )

    def provenance(self) -> dict[str, Any]:
        """What produced a result: the model, the bundle and who signed it, the precision and the
        accuracy gate it passed against FP32 (``{}`` when the manifest records none)."""
        return {
            "model_id": self.manifest.model_id,
            "model_version": self.manifest.model_version,
            "bundle_sha256": self.bundle.digest,
            "radedge_version": __version__,
            "backend": self.backend.name,
            "device": self.backend.device,
            "precision": self.precision,
            "gate": dict(self.manifest.precisions[self.precision].gate),
            "signature": self.bundle.signature.to_document(),
        }


def intensity_lut(manifest: Manifest, image: Image, *, threads: int = 0) -> IntensityLut:
    """The stored value -> [0, 1] table ``manifest``'s model was trained with, for ``image``:
    its explicit window when it has one, else its VOI rule. ``threads``: 0 for all cores.

    Raises ``NotAnalysableError`` when every pixel is padding (``check_signal``), when the
    table has no meaning (``build_lut``: a rescale or window that leaves none) or when the
    image has no contrast under it (``check_contrast``: one display intensity for every pixel)."""
    spec = manifest.intensity
    voi = spec.window if spec.window is not None else spec.voi
    # Before the table: a percentile window has nothing to count on an image of padding.
    check_signal(image)
    lut = build_lut(image, voi=voi, voi_index=spec.voi_index, threads=threads)
    check_contrast(image, lut, threads=threads)
    return lut


def conclude(
    manifest: Manifest,
    heads: Mapping[str, HeadResult],
    *,
    timer: StageTimer,
    source: str,
    geometry: ResizeGeometry,
    image: dict[str, Any],
    provenance: dict[str, Any],
    display: DisplayImage | None = None,
    header: Any = None,
) -> Prediction:
    """The flag rules over decoded ``heads`` and the ``Prediction`` holding both: the last
    stage of ``Model.analyse``, and of a server that ran preprocessing and inference in
    other processes (``radedge triton``). Laps ``flags`` on ``timer``, then finishes it.

    ``image``: ``describe_image``'s record of the input; ``display``: the windowed image an
    overlay is drawn on (None: the prediction draws no overlay); ``header``: the source's
    DICOM header, which DICOM outputs reference (None: no DICOM outputs).
    """
    flags, flag_notes = evaluate_flags(manifest.flag_rules, heads, model=manifest.model_id)
    timer.lap("flags")
    return Prediction(
        source=source,
        model_id=manifest.model_id,
        flags=flags,
        heads=dict(heads),
        timings_ms=timer.finish(),
        provenance=provenance,
        image=image,
        geometry=geometry,
        display_head=manifest.display_head,
        notes=flag_notes,
        _display=display,
        _header=header,
        _manifest=manifest,
    )


def load_model(
    bundle: str | os.PathLike | Bundle | None = None,
    *,
    precision: str | None = None,
    trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None,
    backend: str = "onnxruntime",
    threads: int = 0,
    warm_up: bool = True,
    scope: str = "lenient",
) -> Model:
    """Load and verify a bundle (``None``: the bundled demo model ``bone-tumor``) on a backend.

    ``precision``: ``"fp32"`` (None), ``"fp16"`` or ``"int8"``, one the bundle carries (manifest
    ``precisions``; ``PrecisionNotInBundleError`` otherwise). ``trusted_keys``: public key files
    or ``Ed25519PublicKey`` objects; given, only a bundle signed by one of them loads
    (``BundleSignatureError``), see ``radedge.bundle.load_bundle``. ``threads`` caps the native
    ops' and the backend's CPU threads (0: all cores). ``scope``: ``"lenient"`` analyses an image
    lacking an attribute the manifest's scope names (Body Part Examined...) with a note;
    ``"strict"`` refuses it (``ScopeMetadataMissingError``, an ``OutOfScopeError``).

    Every argument is checked here: a bad one raises ``InvalidArgumentError`` naming it, before
    any bundle is read.
    """
    check_load_arguments("load_model", precision=precision, backend=backend, threads=threads, warm_up=warm_up,
                         scope=scope)
    if isinstance(bundle, Bundle):
        loaded = bundle if trusted_keys is None else bundle.check_signature(trusted_keys)
    elif bundle is None or isinstance(bundle, (str, os.PathLike)):
        loaded = load_bundle(bundle, trusted_keys=trusted_keys)
    else:
        raise invalid_argument("load_model", "bundle", bundle,
                               "a bundle directory or .radedge file (str or os.PathLike), a Bundle, or None")
    precision = "fp32" if precision is None else precision
    chosen = loaded.manifest.precisions.get(precision)
    if chosen is None:
        carried = list(loaded.manifest.precisions)
        raise PrecisionNotInBundleError(
            f"{loaded.manifest.model_id} ({loaded.location}) has no {precision} model; it carries "
            f"{', '.join(carried)}. Pick one of those, or export the bundle with {precision}.",
            argument="precision", received=precision, expected=carried, location=str(loaded.location),
        )
    instance = create_backend(backend, loaded.read(chosen.file), threads=threads or None)
    model = Model(loaded, CpuPlan(loaded.manifest, instance, threads=threads), threads=threads, precision=precision,
                  scope=scope)
    if warm_up:
        model.warm_up()
    return model


#: The most CPU threads ``threads`` may ask for.
MAX_THREADS = 1024


def check_load_arguments(function: str, *, precision: Any, backend: Any, threads: Any, warm_up: Any,
                         scope: Any) -> None:
    """Refuse, with ``InvalidArgumentError`` naming it, a ``load_model`` / ``load_models``
    argument that could only fail later."""
    check_choice(function, "precision", precision, tuple(PRECISION_FILES), none=True)
    check_choice(function, "backend", backend, BACKENDS)
    check_count(function, "threads", threads, minimum=0, maximum=MAX_THREADS, meaning="0: all cores")
    check_flag(function, "warm_up", warm_up)
    check_choice(function, "scope", scope, SCOPE_MODES)


def check_predict_arguments(function: str, label: Any, check_scope: Any) -> None:
    if label is not None and not isinstance(label, str):
        raise invalid_argument(function, "label", label, "a str naming the input in the result, or None")
    check_flag(function, "check_scope", check_scope)


def check_region(region: Any) -> Crop | None:
    """``region`` as (x, y, width, height), four integers in source pixels with a positive size,
    or None; ``InvalidArgumentError`` otherwise."""
    if region is None:
        return None
    expected = "None or (x, y, width, height): four integers in source pixels, x and y >= 0, width and height > 0"
    try:
        values = tuple(region)
    except TypeError:
        raise invalid_argument("predict", "region", region, expected) from None
    if len(values) != 4 or any(isinstance(value, bool) or not isinstance(value, (int, np.integer)) for value in values) \
            or values[0] < 0 or values[1] < 0 or values[2] <= 0 or values[3] <= 0:
        raise invalid_argument("predict", "region", region, expected)
    return tuple(int(value) for value in values)  # type: ignore[return-value]


def check_region_inside(region: Crop, image: Image) -> None:
    x, y, width, height = region
    if x + width > image.columns or y + height > image.rows:
        raise invalid_argument(
            "predict", "region", region,
            f"a rectangle inside the image ({image.columns} columns x {image.rows} rows)")


def describe_source(source: Any, label: str | None = None) -> str:
    """How a result names its input: the caller's label, else the path, else the input's type."""
    if label is not None:
        return label
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source))
    if isinstance(source, Image) and source.source.path:
        return source.source.path
    return f"<{type(source).__name__}>"


def describe_image(image: Image, lut: IntensityLut | None, notes: list[str]) -> dict[str, Any]:
    """Size, spacing and how intensities were interpreted: no patient data."""
    spacing = image.spacing
    return {
        "rows": image.rows,
        "columns": image.columns,
        "format": image.source.format,
        "transfer_syntax": image.source.transfer_syntax_name,
        "modality": image.source.modality,
        "body_part": image.source.body_part,
        "presentation_intent": image.source.presentation_intent,
        "photometric_interpretation": image.intensity.photometric_interpretation,
        "bits_stored": image.intensity.bits_stored,
        "pixel_spacing_mm": [spacing.row_mm, spacing.column_mm] if spacing else None,
        "pixel_spacing_source": spacing.source if spacing else None,
        "pixel_spacing_problem": image.spacing_problem,
        "intensity": None if lut is None else lut.description,
        "notes": list(image.notes) + notes,
    }
