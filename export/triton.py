"""``radedge triton``: a bundle as a Triton Inference Server model repository.

One GPU server running Triton can serve many consoles: Triton queues, batches and schedules
the network, radedge does what comes before and after it, with the same functions
``radedge run`` uses. For a bundle whose model id is M (``triton_name``):

    DIR/README.txt                 how to serve it; how to put a TensorRT plan in the network's place
    DIR/M/config.pbtxt             the ensemble: DICOM -> M_preprocess -> M_model -> M_postprocess -> PREDICTION
    DIR/M_preprocess/config.pbtxt  Python backend: DICOM -> the network input, GEOMETRY, IMAGE_INFO
    DIR/M_preprocess/1/model.py      + 1/bundle/, the verified bundle it reads its manifest from
    DIR/M_model/config.pbtxt       onnxruntime_onnx, tensor names, types and dims read off the ONNX file
    DIR/M_model/1/model.onnx         the bundle's ONNX file of the chosen precision
    DIR/M_postprocess/config.pbtxt Python backend: every raw output + GEOMETRY + IMAGE_INFO -> PREDICTION
    DIR/M_postprocess/1/model.py     + 1/bundle/

Tensors between the models:

    DICOM       uint8 [n]: the bytes of one DICOM file (PNG, JPEG and TIFF are read too).
    GEOMETRY    float32 [12]: the source's size and where the image lies in the network
                input (``GEOMETRY_FIELDS``, ``pack_geometry``), how the decoders map back.
    IMAGE_INFO  one JSON string: ``describe_image``'s record of the input (size, pixel
                spacing and the attribute it came from, how intensities were read, notes;
                no patient data) and the preprocess model's stage times. The decoders take
                the spacing from here: JSON keeps it exact, float32 would move mm² figures.
    PREDICTION  one JSON string: ``radedge.Prediction.to_dict()``, as ``radedge run`` writes it.

``PreprocessStep`` and ``PostprocessStep`` hold all the logic of the two Python models;
their ``model.py`` files (``export/triton_models``) only move tensors in and out of Triton.
Importing this module loads neither onnx nor onnxruntime: the Python models import it
inside the server, where only radedge is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radedge import __version__
from radedge._files import write_directory
from radedge.bundle import MANIFEST, Bundle, load_bundle
from radedge.bundle.signing import SIGNATURE
from radedge.errors import BundleError, InputError, MissingDependencyError
from radedge.io import read_image
from radedge.io.image import PixelSpacing
from radedge.ops.preprocess import preprocess
from radedge.pipeline import StageTimer, check_scope, conclude, decode_outputs, describe_image, intensity_lut
from radedge.pipeline.analysable import check_size
from radedge.spec import PRECISIONS
from radedge.spec.geometry import ResizeGeometry

from .loaders import ExportError

DICOM = "DICOM"
GEOMETRY = "GEOMETRY"
IMAGE_INFO = "IMAGE_INFO"
PREDICTION = "PREDICTION"
_RESERVED = (DICOM, GEOMETRY, IMAGE_INFO, PREDICTION)

#: What each element of the GEOMETRY tensor holds, in order: ``ResizeGeometry``'s integer
#: fields. Integers up to 2^24 are exact in float32, and the scales are recomputed as
#: content / crop, as the preprocess op computes them, so the decoders get the very
#: geometry the op returned.
GEOMETRY_FIELDS = (
    "source_rows", "source_columns", "crop_x", "crop_y", "crop_width", "crop_height",
    "content_height", "content_width", "offset_y", "offset_x", "input_height", "input_width",
)

#: ``Prediction.source`` for a Triton request: the request carries no file name.
SOURCE = "<Triton request>"

# The models' Python glue, copied into the repository as <model>/1/model.py.
_MODEL_FILES = Path(__file__).resolve().parent / "triton_models"

# ONNX TensorProto element types (onnx.TensorProto.DataType) -> Triton data types.
_ONNX_TO_TRITON = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32",
    13: "TYPE_UINT64", 16: "TYPE_BF16",
}
# The input types the preprocess op's tensor can be given in.
_INPUT_DTYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16}


# --------------------------------------------------------------------------- GEOMETRY


def pack_geometry(geometry: ResizeGeometry) -> np.ndarray:
    """float32 [12], ``geometry``'s fields in the order of ``GEOMETRY_FIELDS``."""
    values = [getattr(geometry, name) for name in GEOMETRY_FIELDS]
    if any(value is None for value in values):
        raise ValueError(f"a geometry for the {GEOMETRY} tensor must record the input size; got {geometry}")
    return np.array(values, dtype=np.float32)


def unpack_geometry(vector: Any) -> ResizeGeometry:
    """The ``ResizeGeometry`` ``pack_geometry`` packed, scales included."""
    values = np.asarray(vector, dtype=np.float64).reshape(-1)
    fields = dict(zip(GEOMETRY_FIELDS, values))
    if (
        values.size != len(GEOMETRY_FIELDS)
        or not all(v.is_integer() and v >= 0 for v in values.tolist())
        or not (fields["crop_height"] > 0 and fields["crop_width"] > 0)
    ):
        raise InputError(
            f"{GEOMETRY} must hold {len(GEOMETRY_FIELDS)} whole numbers >= 0 ({', '.join(GEOMETRY_FIELDS)}); "
            f"got {values.size} values. Feed it from the preprocess model's {GEOMETRY} output, as the ensemble does"
        )
    g = {name: int(value) for name, value in fields.items()}
    return ResizeGeometry(
        **g, scale_y=g["content_height"] / g["crop_height"], scale_x=g["content_width"] / g["crop_width"]
    )


# --------------------------------------------------------------------------- the Python models


def bundle_from_config(config: Mapping[str, Any], version_directory: str | os.PathLike) -> Bundle:
    """The bundle a Python model's ``config`` (Triton's model configuration as JSON) names
    in its ``bundle`` parameter (relative to ``version_directory``, or absolute), loaded,
    verified, and checked to be the bundle the repository was written for (``bundle_sha256``)."""
    bundle = load_bundle(Path(version_directory) / _parameter(config, "bundle"))
    expected = _parameter(config, "bundle_sha256")
    if bundle.digest != expected:
        raise BundleError(
            f"the bundle at {bundle.location} has sha256 {bundle.digest}, not {expected}, the bundle this "
            "repository was written for; write the repository again with radedge triton"
        )
    return bundle


def _parameter(config: Mapping[str, Any], key: str) -> str:
    try:
        return config["parameters"][key]["string_value"]
    except (KeyError, TypeError):
        raise BundleError(
            f"model {config.get('name')!r} has no {key!r} parameter in its config.pbtxt; "
            "write the repository again with radedge triton"
        ) from None


@dataclass
class PreprocessStep:
    """One file's bytes -> the network input, as ``radedge.Model.predict`` makes it: read ->
    scope check -> the manifest's intensity table -> the preprocess op.

    ``input_name`` / ``input_dtype``: the network input's name and numpy dtype (float32 or
    float16). ``threads``: CPU threads of the native ops (0: RADEDGE_NUM_THREADS or all cores).
    """

    bundle: Bundle
    input_name: str
    input_dtype: type
    threads: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], version_directory: str | os.PathLike) -> PreprocessStep:
        """The step a ``radedge triton`` preprocess model's configuration describes."""
        bundle = bundle_from_config(config, version_directory)
        (output,) = [o for o in config["output"] if o["name"] not in (GEOMETRY, IMAGE_INFO)]
        return cls(bundle, output["name"], _INPUT_DTYPES[output["data_type"]])

    def __call__(self, dicom: Any) -> dict[str, np.ndarray]:
        """``dicom``: uint8 [n], the bytes of one file. Returns the network input
        (``input_dtype`` [1, C, H, W]), GEOMETRY (float32 [12]) and IMAGE_INFO (object [1],
        one JSON document as bytes), by name.

        Raises ``radedge.InputError`` (a subclass) for a file radedge cannot read or that is
        outside the model's scope, with the reason and what to do.
        """
        manifest = self.bundle.manifest
        timer = StageTimer()
        data = np.asarray(dicom)
        if data.dtype != np.uint8 or data.ndim != 1:
            raise InputError(
                f"{DICOM} must be one file's bytes, a 1-D UINT8 tensor; got {data.dtype} with shape "
                f"{list(data.shape)}. "
                "Send each file as its own request: Triton batches requests itself"
            )
        image = read_image(data.tobytes())
        timer.lap("read")
        notes = check_scope(manifest, image)
        check_size(manifest, image.rows, image.columns)
        lut = intensity_lut(manifest, image, threads=self.threads)
        timer.lap("lut")
        tensor, geometry = preprocess(image.pixels, lut.table, lut.first_stored_value, manifest.preprocess,
                                      threads=self.threads)
        timer.lap("preprocess")
        info = {"image": describe_image(image, lut, notes), "timings_ms": timer.timings}
        return {
            self.input_name: tensor.astype(self.input_dtype, copy=False),
            GEOMETRY: pack_geometry(geometry),
            IMAGE_INFO: _strings(json.dumps(info)),
        }


@dataclass
class PostprocessStep:
    """The network's raw outputs + GEOMETRY + IMAGE_INFO -> the heads decoded at the source
    geometry -> flags -> PREDICTION, as ``radedge.Model.predict`` makes them.

    ``output_names``: the network outputs it takes; ``precision``: of the network file the
    repository serves, recorded in the provenance.
    """

    bundle: Bundle
    output_names: tuple[str, ...]
    precision: str
    threads: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], version_directory: str | os.PathLike) -> PostprocessStep:
        """The step a ``radedge triton`` postprocess model's configuration describes."""
        bundle = bundle_from_config(config, version_directory)
        names = tuple(i["name"] for i in config["input"] if i["name"] not in (GEOMETRY, IMAGE_INFO))
        return cls(bundle, names, _parameter(config, "precision"))

    @property
    def input_names(self) -> tuple[str, ...]:
        return (*self.output_names, GEOMETRY, IMAGE_INFO)

    def provenance(self) -> dict[str, Any]:
        manifest = self.bundle.manifest
        return {
            "model_id": manifest.model_id,
            "model_version": manifest.model_version,
            "bundle_sha256": self.bundle.digest,
            "radedge_version": __version__,
            # Triton chooses the backend and device (M_model/config.pbtxt, instance_group).
            "backend": "triton",
            "device": None,
            "precision": self.precision,
            "model_file": manifest.precisions[self.precision].file,
        }

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inputs``: every name of ``input_names`` -> its array (network outputs of batch 1,
        GEOMETRY float32 [12], IMAGE_INFO object [1]). Returns PREDICTION: object [1], one JSON
        document as bytes, ``radedge.Prediction.to_dict()``.

        Raises ``radedge.BackendError`` for outputs the heads cannot decode (NaN, wrong shape)
        and ``radedge.InputError`` for a GEOMETRY or IMAGE_INFO the preprocess model did not make.
        """
        manifest = self.bundle.manifest
        timer = StageTimer()
        geometry = unpack_geometry(inputs[GEOMETRY])
        info = _json(inputs[IMAGE_INFO])
        image = info["image"]
        spacing_mm = image["pixel_spacing_mm"]
        spacing = None if spacing_mm is None else PixelSpacing(*spacing_mm, source=image["pixel_spacing_source"])
        heads = decode_outputs(
            manifest, {name: inputs[name] for name in self.output_names}, geometry, spacing,
            image["pixel_spacing_problem"], threads=self.threads,
        )
        timer.lap("decode")
        prediction = conclude(manifest, heads, timer=timer, source=SOURCE, geometry=geometry, image=image,
                              provenance=self.provenance())
        # Only radedge's own stages: Triton's statistics hold queueing and inference, and
        # this model's total would pass for the request's.
        prediction.timings_ms = {**info["timings_ms"], "decode": timer.timings["decode"],
                                 "flags": timer.timings["flags"]}
        return {PREDICTION: _strings(prediction.to_json(indent=None))}


# What PostprocessStep reads from IMAGE_INFO's image record (describe_image's keys).
_IMAGE_KEYS = {"pixel_spacing_mm", "pixel_spacing_source", "pixel_spacing_problem"}


def _strings(text: str) -> np.ndarray:
    """A TYPE_STRING tensor of one element, as Triton's Python backend takes it."""
    return np.array([text.encode()], dtype=np.object_)


def _json(tensor: Any) -> dict[str, Any]:
    values = np.asarray(tensor, dtype=np.object_).reshape(-1)
    document = None
    if values.size == 1 and isinstance(values[0], (bytes, str)):
        try:
            document = json.loads(values[0])
        except ValueError:
            pass
    image = document.get("image") if isinstance(document, dict) else None
    if not isinstance(image, dict) or "timings_ms" not in document or not _IMAGE_KEYS <= image.keys():
        raise InputError(
            f"{IMAGE_INFO} must be the one JSON document the preprocess model writes; feed it from that model's "
            f"{IMAGE_INFO} output, as the ensemble does"
        )
    return document


# --------------------------------------------------------------------------- the repository


@dataclass(frozen=True)
class TensorInfo:
    """An ONNX graph input or output as Triton declares it: ``data_type`` (``TYPE_FP32``...)
    and ``dims`` (-1 where the graph leaves an axis free)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


def onnx_tensors(onnx_bytes: bytes) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The graph inputs (initializers left out) and outputs of an ONNX model, read with the
    ``onnx`` package (``MissingDependencyError`` where it is not installed)."""
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "Writing a Triton model repository") from None
    graph = onnx.load_model_from_string(onnx_bytes).graph
    constants = {initializer.name for initializer in graph.initializer}

    def info(value) -> TensorInfo:
        tensor = value.type.tensor_type
        data_type = _ONNX_TO_TRITON.get(tensor.elem_type)
        if data_type is None:
            raise ExportError(
                f"ONNX tensor {value.name!r} has element type {tensor.elem_type}, which Triton has no type for"
            )
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorInfo(value.name, data_type, dims)

    return [info(v) for v in graph.input if v.name not in constants], [info(v) for v in graph.output]


def triton_name(model_id: str) -> str:
    """``model_id`` as a Triton model name: letters, digits, ``_`` and ``-``, everything else
    ``_``; a name Triton serves at ``/v2/models/<name>`` and a folder of the repository."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", model_id).lstrip("-_")
    if not name:
        raise ExportError(f"model id {model_id!r} leaves no usable Triton model name; pass name=... (--name)")
    return name


def write_triton_repository(
    bundle: str | os.PathLike | Bundle | None,
    directory: str | os.PathLike,
    *,
    precision: str = "fp32",
    name: str | None = None,
    max_batch_size: int | None = None,
    replace: bool = False,
) -> Path:
    """Write ``bundle`` (a path, a loaded ``Bundle``, None: the demo model) as a Triton model
    repository in ``directory`` and return it (layout: the module docstring).

    ``precision``: which of the bundle's ONNX files (``manifest.precisions``) the network
    model serves. ``name``: the ensemble's model name (default: the model id through
    ``triton_name``); the other three are ``<name>_preprocess``, ``<name>_model`` and
    ``<name>_postprocess``. ``max_batch_size``: how many requests Triton's dynamic batcher
    may put in one network run, for an ONNX file whose batch axis is free (default 8); an
    ONNX file with batch 1 fixed serves with ``max_batch_size: 0`` (None or 0 only).

    The repository is written beside ``directory`` and renamed into place, so it appears
    whole or not at all. ``directory`` must not exist or be empty; ``replace=True`` replaces
    whatever is there. Raises ``ExportError`` for those and for arguments that do not fit
    the bundle, ``BundleError`` when the bundle's manifest and ONNX file disagree.
    """
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    manifest = bundle.manifest
    if manifest.input_region is not None:
        region = manifest.input_region
        raise ExportError(
            f"{manifest.model_id} is a second-stage model: it analyses the region head {region.head!r} of "
            f"{region.model} finds, and a Triton repository serves one model on the whole image. "
            "Serve the pair with radedge (radedge run --model for each)"
        )
    if precision not in manifest.precisions:
        raise ExportError(
            f"bundle {manifest.model_id} carries no {precision} model (it has {', '.join(manifest.precisions)}; "
            f"radedge knows {', '.join(PRECISIONS)}); pick one of those, or export the bundle with {precision}"
        )
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ExportError(
            f"Triton model name {name!r} must be letters, digits, '_' and '-', starting with a letter or digit"
        )
    name = name or triton_name(manifest.model_id)
    directory = Path(directory)
    if directory.exists() and not replace and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(
            f"{directory} exists and is not empty; pick a new folder, or replace it (--force, replace=True)"
        )

    onnx_bytes = bundle.read(manifest.precisions[precision].file)
    inputs, outputs = onnx_tensors(onnx_bytes)
    batch = _check_network(manifest, inputs, outputs, max_batch_size)
    models = {
        name: _ensemble_config(name, inputs[0], outputs),
        f"{name}_preprocess": _preprocess_config(f"{name}_preprocess", manifest, inputs[0], bundle.digest),
        f"{name}_model": _network_model_config(f"{name}_model", inputs, outputs, batch),
        f"{name}_postprocess": _postprocess_config(f"{name}_postprocess", outputs, bundle.digest, precision),
    }

    def write(staging: Path) -> None:
        for model, config in models.items():
            (staging / model / "1").mkdir(parents=True)
            (staging / model / "config.pbtxt").write_text(config)
        (staging / f"{name}_model" / "1" / "model.onnx").write_bytes(onnx_bytes)
        for step in ("preprocess", "postprocess"):
            version = staging / f"{name}_{step}" / "1"
            shutil.copyfile(_MODEL_FILES / f"{step}.py", version / "model.py")
            _copy_bundle(bundle, version / "bundle")
        (staging / "README.txt").write_text(_readme(name, manifest, bundle.digest, precision, batch))

    return write_directory(directory, write)


def _check_network(manifest, inputs: list[TensorInfo], outputs: list[TensorInfo], max_batch_size: int | None) -> int:
    """Check the ONNX file against the manifest and the names the repository uses; return
    the max_batch_size the network model serves with."""
    if len(inputs) != 1 or inputs[0].name != manifest.input_name:
        raise BundleError(
            f"the manifest's input is {manifest.input_name!r}, the ONNX file's inputs are {[i.name for i in inputs]}; "
            "the bundle's manifest and model do not belong together"
        )
    produced = {output.name for output in outputs}
    missing = [tensor for tensor in manifest.tensors if tensor not in produced]
    if missing:
        raise BundleError(
            f"the manifest's heads read outputs {missing} but the ONNX file produces {sorted(produced)}; "
            "the bundle's manifest and model do not belong together"
        )
    clashes = [t.name for t in (*inputs, *outputs) if t.name in _RESERVED]
    if clashes:
        raise ExportError(
            f"the ONNX file names tensors {clashes}, names the repository gives its own tensors; "
            "rename them in the export (output_names=...)"
        )
    network_input = inputs[0]
    if network_input.data_type not in _INPUT_DTYPES:
        raise ExportError(
            f"the ONNX input {network_input.name!r} is {network_input.data_type}; radedge's preprocess op makes "
            f"{' or '.join(_INPUT_DTYPES)}"
        )
    shape = network_input.dims
    if len(shape) != 4 or any(d not in (-1, m) for d, m in zip(shape[1:], manifest.input_shape[1:])):
        raise BundleError(
            f"the ONNX input {network_input.name!r} has shape {list(shape)}, the manifest's is "
            f"{list(manifest.input_shape)}; the bundle's manifest and model do not belong together"
        )
    free_batch = shape[0] == -1
    if free_batch and any(not output.dims or output.dims[0] != -1 for output in outputs):
        raise ExportError(
            "the ONNX input's batch axis is free but not every output's is; export with the batch axis "
            "dynamic on every input and output"
        )
    if not free_batch and shape[0] != 1:
        raise ExportError(f"the ONNX input's batch axis is fixed at {shape[0]}; radedge sends one image at a time")
    if max_batch_size is None:
        max_batch_size = 8 if free_batch else 0
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 0:
        raise ExportError(f"max_batch_size must be an integer >= 0; got {max_batch_size!r}")
    if max_batch_size > 0 and not free_batch:
        raise ExportError(
            f"the ONNX file fixes its batch axis at 1, so Triton cannot batch it (max_batch_size {max_batch_size}); "
            "leave max_batch_size out, or export the model with a dynamic batch axis"
        )
    return max_batch_size


# Protobuf text format, the form of config.pbtxt. A message is a list of (field, value)
# pairs, so repeated fields and map entries keep their order; a value is a str (quoted),
# an int, an _Enum, a list of ints (a packed repeated field), a message, or a list of
# messages. ("#", text) is a comment line.


class _Enum(str):
    """An enum value, written bare: ``data_type: TYPE_FP32``."""


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if not escaped.isascii() or not escaped.isprintable():
        raise ExportError(f"{text!r} cannot be written into config.pbtxt; use printable ASCII")
    return f'"{escaped}"'


def _text(message: list, depth: int = 0) -> str:
    pad = "  " * depth
    lines = []
    for field, value in message:
        if field == "#":
            lines.append(f"{pad}# {value}" if value else f"{pad}#")
        elif isinstance(value, list) and value and isinstance(value[0], list):
            entries = ",\n".join(f"{pad}  {{\n{_text(entry, depth + 2)}\n{pad}  }}" for entry in value)
            lines.append(f"{pad}{field} [\n{entries}\n{pad}]")
        elif isinstance(value, list) and value and isinstance(value[0], tuple):
            lines.append(f"{pad}{field} {{\n{_text(value, depth + 1)}\n{pad}}}")
        elif isinstance(value, list):
            lines.append(f"{pad}{field}: [ {', '.join(str(int(v)) for v in value)} ]")
        elif isinstance(value, _Enum):
            lines.append(f"{pad}{field}: {value}")
        elif isinstance(value, str):
            lines.append(f"{pad}{field}: {_quoted(value)}")
        else:
            lines.append(f"{pad}{field}: {int(value)}")
    return "\n".join(lines)


def _tensor(name: str, data_type: str, dims: Sequence[int]) -> list:
    return [("name", name), ("data_type", _Enum(data_type)), ("dims", list(dims))]


def _parameters(**values: str) -> list:
    return [("parameters", [("key", key), ("value", [("string_value", value)])]) for key, value in values.items()]


def _config(fields: list) -> str:
    return _text(fields) + "\n"


def _ensemble_config(name: str, network_input: TensorInfo, outputs: list[TensorInfo]) -> str:
    # Each ensemble tensor is named after the tensor it carries; _check_network made sure
    # that the network's names and the repository's own do not clash.
    def step(model: str, takes: Sequence[str], gives: Sequence[str]) -> list:
        return [
            ("model_name", model), ("model_version", -1),
            *[("input_map", [("key", tensor), ("value", tensor)]) for tensor in takes],
            *[("output_map", [("key", tensor), ("value", tensor)]) for tensor in gives],
        ]

    raw = [output.name for output in outputs]
    steps = [
        step(f"{name}_preprocess", [DICOM], [network_input.name, GEOMETRY, IMAGE_INFO]),
        step(f"{name}_model", [network_input.name], raw),
        step(f"{name}_postprocess", [*raw, GEOMETRY, IMAGE_INFO], [PREDICTION]),
    ]
    return _config([
        ("#", f"One {DICOM} file in, one {PREDICTION} (JSON) out: preprocess -> network -> postprocess."),
        ("name", name),
        ("platform", "ensemble"),
        ("max_batch_size", 0),
        ("input", [_tensor(DICOM, "TYPE_UINT8", [-1])]),
        ("output", [_tensor(PREDICTION, "TYPE_STRING", [1])]),
        ("ensemble_scheduling", [("step", steps)]),
    ])


def _python_model(name: str, inputs: list, outputs: list, parameters: list) -> str:
    return _config([
        ("name", name),
        ("backend", "python"),
        # One file per request: a DICOM file's length is its own, so requests are not
        # batched here; the network model batches them when its ONNX file allows.
        ("max_batch_size", 0),
        ("input", inputs),
        ("output", outputs),
        # radedge's native ops run on the CPU with their own threads (RADEDGE_NUM_THREADS).
        ("instance_group", [[("kind", _Enum("KIND_CPU")), ("count", 1)]]),
        *parameters,
    ])


def _preprocess_config(name: str, manifest, network_input: TensorInfo, digest: str) -> str:
    return _python_model(
        name,
        [_tensor(DICOM, "TYPE_UINT8", [-1])],
        [_tensor(network_input.name, network_input.data_type, manifest.input_shape),
         _tensor(GEOMETRY, "TYPE_FP32", [len(GEOMETRY_FIELDS)]),
         _tensor(IMAGE_INFO, "TYPE_STRING", [1])],
        _parameters(bundle="bundle", bundle_sha256=digest),
    )


def _postprocess_config(name: str, outputs: list[TensorInfo], digest: str, precision: str) -> str:
    # The network runs one request's image: batch 1 whether or not Triton batched it.
    raw = [_tensor(o.name, o.data_type, [1, *o.dims[1:]]) for o in outputs]
    return _python_model(
        name,
        [*raw, _tensor(GEOMETRY, "TYPE_FP32", [len(GEOMETRY_FIELDS)]), _tensor(IMAGE_INFO, "TYPE_STRING", [1])],
        [_tensor(PREDICTION, "TYPE_STRING", [1])],
        _parameters(bundle="bundle", bundle_sha256=digest, precision=precision),
    )


def _network_model_config(name: str, inputs: list[TensorInfo], outputs: list[TensorInfo], batch: int) -> str:
    def dims(tensor: TensorInfo) -> tuple[int, ...]:
        return tensor.dims[1:] if batch else tensor.dims

    fields = [
        ("#", "TensorRT: build 2/model.plan from 1/model.onnx as README.txt says, then change the platform to"),
        ("#", '  platform: "tensorrt_plan"'),
        ("#", "Triton serves the highest version, so 2/model.plan replaces 1/model.onnx."),
        ("name", name),
        ("platform", "onnxruntime_onnx"),
        ("max_batch_size", batch),
        ("input", [_tensor(t.name, t.data_type, dims(t)) for t in inputs]),
        ("output", [_tensor(t.name, t.data_type, dims(t)) for t in outputs]),
    ]
    if batch:
        # Joins the requests already queued and makes none wait for more: a console waits for
        # its flag. A delay trades that latency for larger batches under light load.
        fields.append(("dynamic_batching", [("max_queue_delay_microseconds", 0)]))
    return _config(fields)


def _copy_bundle(bundle: Bundle, directory: Path) -> None:
    """The bundle as a directory, byte for byte: its manifest (so its sha256 is the same), its
    signature when it has one, and every file it lists."""
    directory.mkdir(parents=True)
    (directory / MANIFEST).write_bytes(bundle.manifest_bytes)
    if bundle.signature_bytes is not None:
        (directory / SIGNATURE).write_bytes(bundle.signature_bytes)
    for file in bundle.manifest.files:
        (directory / file).parent.mkdir(parents=True, exist_ok=True)
        (directory / file).write_bytes(bundle.read(file))


def _readme(name: str, manifest, digest: str, precision: str, batch: int) -> str:
    image = manifest.input_name
    shape = ",".join(str(d) for d in manifest.input_shape[1:])
    trt_shapes = (
        f" \\\n      --minShapes={image}:1,{shape} --optShapes={image}:{batch},{shape}"
        f" --maxShapes={image}:{batch},{shape}"
        if batch else ""
    )
    width = len(name) + len("_postprocess") + 3
    return f"""\
{manifest.model_id} {manifest.model_version} for Triton Inference Server, written by radedge {__version__}
bundle sha256 {digest}, {precision} ({manifest.precisions[precision].file})

Serve
  tritonserver --model-repository /path/to/this/folder

  The Python backend runs radedge: install radedge {__version__} (the wheel the consoles run, built
  for the backend's Python version) into the Python that tritonserver's Python backend uses.
  Set RADEDGE_NUM_THREADS to share the CPU between the preprocess and postprocess models.

Ask
  model "{name}", input "{DICOM}": UINT8 [n], the bytes of one DICOM file;
  output "{PREDICTION}": STRING [1], one JSON document: flags (code, title, score), every head's
  result, the image's size and spacing, provenance (model id and version, bundle sha256).
  A file radedge refuses (not DICOM, out of the model's scope) gets an error response saying why.

Models
  {name:{width}}the ensemble: {DICOM} -> {name}_preprocess -> {name}_model -> {name}_postprocess -> {PREDICTION}
  {name + "_preprocess":{width}}radedge read -> intensity table -> preprocess op (Python backend, CPU)
  {name + "_model":{width}}the network, ONNX Runtime{f", dynamic batching up to {batch}" if batch else ", batch 1"}
  {name + "_postprocess":{width}}radedge head decoders -> flag rules -> JSON (Python backend, CPU)
  Each Python model verifies the bundle in its 1/bundle/ when it loads.

TensorRT
  A plan is valid only for the GPU and TensorRT version that built it: build it on the server.
  1. mkdir {name}_model/2
     trtexec --onnx={name}_model/1/model.onnx --stronglyTyped --saveEngine={name}_model/2/model.plan{trt_shapes}
  2. In {name}_model/config.pbtxt change  platform: "onnxruntime_onnx"  to  platform: "tensorrt_plan"
  3. Restart Triton (or load {name}_model again): it serves the highest version, 2.
  The plan keeps the ONNX file's tensor names, types and shapes, so nothing else changes.
"""
