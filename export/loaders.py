"""Composable export steps, each named ``<Target>From<Source>``, in Polygraphy's loader pattern.

Every step takes the previous step's result, or a callable that produces it
(``invoke_if_callable``), so a chain is built first and run once:

    fp32 = OnnxFromTorch(model, (1, 1, 256, 256), "image", ("lesion_logits", "tumor_logits"))
    int8 = QdqOnnxFromOnnx(fp32, calibration_images)
    int8_bytes = int8()                   # exports, then calibrates and quantizes
    int8.report                           # what the quantizer did

    report = check_onnx_against_torch(model, fp32(), samples)
    SaveBundle(fp32, manifest)(directory)

Each step checks what it promises (opset, float32 boundary, symmetric int8, ...) and raises
``ExportError`` saying what to change when the result breaks a promise. torch, onnx,
onnxruntime and the converters are imported here, inside the steps, never by the runtime SDK.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radedge import __version__
from radedge.bundle import write_bundle
from radedge.errors import MissingDependencyError, RadedgeError
from radedge.spec import Manifest

#: The ONNX opset every export is pinned to: one that the ONNX parser of TensorRT 10.3
#: (JetPack 6, Jetson Orin) reads, so every target parses the same graph.
OPSET = 17

#: Nodes whose second input is a weight: what reduced precision is about.
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

#: Nodes between a head's last compute node and its output that do no learned arithmetic of
#: their own; ``head_final_nodes`` walks back through them.
PASS_THROUGH_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Div", "Dropout", "Elu",
    "Expand", "Flatten", "Gather", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "Identity",
    "LeakyRelu", "LogSoftmax", "MaxPool", "Mul", "Pad", "ReduceMax", "ReduceMean", "ReduceSum",
    "Relu", "Reshape", "Resize", "Sigmoid", "Slice", "Softmax", "Softplus", "Split", "Squeeze",
    "Sub", "Tanh", "Transpose", "Unsqueeze", "Upsample",
})

# Of these, only the first input carries the activation; the others are shapes, scales,
# indices or bounds, and walking into them would reach Shape arithmetic, not a head.
_FIRST_INPUT_ONLY = frozenset({
    "Clip", "Expand", "Gather", "Pad", "ReduceMax", "ReduceMean", "ReduceSum", "Reshape", "Resize",
    "Slice", "Split", "Squeeze", "Unsqueeze", "Upsample",
})

_DYNAMIC_PROGRAM = (
    "export it with a dynamic batch dimension, "
    "torch.export.export(model, (x,), dynamic_shapes={'x': {0: torch.export.Dim('batch')}}) with x of batch 2 or more"
)

# onnx.TensorProto element types, spelled out so this module imports without onnx.
_FLOAT, _FLOAT16 = 1, 10


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Exporting from PyTorch") from None
    return torch


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "Checking and converting ONNX models") from None
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "Checking and quantizing ONNX models") from None
    return onnxruntime


class ExportError(RadedgeError):
    """An export step failed, or the exported model does not reproduce the PyTorch one."""


def invoke_if_callable(value: Any) -> Any:
    """``value()`` when ``value`` is a callable (a loader, or any function producing a step's
    input), else ``value`` itself; how a step accepts either a result or the step before it."""
    return value() if callable(value) else value


def eval_mode(module: Any) -> Any:
    """``module`` in eval mode, returned.

    The module of a ``torch.export`` program refuses ``.eval()``: its graph fixed dropout and
    batch-norm behaviour when the program was exported. Only its ``training`` flags are
    cleared, so that exporters treat it as the inference graph it already is."""
    try:
        module.eval()
    except NotImplementedError:
        for submodule in module.modules():
            submodule.training = False
    return module


def _program_module(graph_module: Any) -> Any:
    """``graph_module`` (the module of a torch.export program) inside a module that accepts
    ``.train()``/``.eval()`` without passing them on: the program's graph fixed its
    inference behaviour when it was exported and refuses both, while the ONNX exporter
    calls ``.train(False)`` to fold BatchNorm."""
    torch = _torch()

    class ProgramModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.exported = graph_module

        def forward(self, *inputs: Any) -> Any:
            return self.exported(*inputs)

        def train(self, mode: bool = True) -> Any:
            self.training = mode
            return self

    return ProgramModule()


@contextlib.contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null for the duration: when a symbolic fails, the
    TorchScript exporter prints the whole TorchScript graph from C++, noise on a path that
    then retries another way (and reports the error if that fails too)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _onnx_model(value: Any) -> Any:
    """A private ``onnx.ModelProto`` from bytes or a ModelProto (copied: steps never change
    their caller's model)."""
    onnx = _onnx()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(value))
    if isinstance(value, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(value)
        return copy
    raise ExportError(
        f"expected ONNX bytes, an onnx.ModelProto or a step producing one; got {type(value).__name__}. "
        "Pass the previous step (e.g. OnnxFromTorch(...)) or its result."
    )


def default_opset(model: Any) -> int | None:
    """The version of the default ("" / "ai.onnx") operator set ``model`` imports; None if none."""
    versions = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def check_opset(model: Any, opset: int = OPSET) -> None:
    """Raise ExportError unless ``model`` (an onnx.ModelProto) imports exactly ``opset`` of
    the default domain. Exporters may raise a requested opset silently; an engine builder
    that reads at most ``opset`` then refuses the file on the target, not here."""
    found = default_opset(model)
    if found != opset:
        raise ExportError(
            f"the ONNX model uses opset {found} of the default domain, not the requested {opset} "
            f"(radedge pins opset {OPSET}, which TensorRT 10.3 on JetPack 6 parses). Export with the TorchScript exporter "
            f"(torch.onnx.export(..., dynamo=False, opset_version={opset})), or convert the file with "
            f"onnx.version_converter.convert_version(model, {opset})."
        )


def _ort_load(onnx_bytes: bytes, what: str) -> Any:
    onnxruntime = _onnxruntime()
    try:
        return onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ExportError(f"ONNX Runtime cannot load the {what}: {error}") from error


def _serialize(model: Any, what: str) -> bytes:
    onnx = _onnx()
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:
        raise ExportError(f"the {what} fails onnx.checker: {error}") from error
    return model.SerializeToString()


# -- PyTorch -> ONNX ----------------------------------------------------------------------


@dataclass
class OnnxFromTorch:
    """A PyTorch model as ONNX bytes: fixed shapes apart from a dynamic batch dimension.

    ``model``: a ``torch.nn.Module``, a TorchScript module, a ``torch.export``
    ``ExportedProgram`` or its ``.module()``, or a callable producing one. An exported program
    must have been exported with a dynamic batch dimension
    (``dynamic_shapes={"x": {0: torch.export.Dim("batch")}}``).

    The graph's input and every output have axis 0 named ``"batch"``; every other axis is
    fixed at ``input_shape``, so engine outputs stay static and data-dependent steps
    (thresholds, NMS) run in radedge's kernels after the engine (DESIGN.md, TensorRT across
    versions). The default-domain opset is checked to equal ``opset`` after export, and the
    graph is run at a second batch size to prove the batch axis is really free.
    """

    model: Any
    input_shape: tuple[int, ...]
    input_name: str = "image"
    output_names: Sequence[str] = ("output",)
    opset: int = OPSET

    def __call__(self) -> bytes:
        torch = _torch()
        model = self.model
        if not isinstance(model, (torch.nn.Module, torch.export.ExportedProgram)):
            model = invoke_if_callable(model)
        if isinstance(model, torch.export.ExportedProgram):
            model = model.module()
        if isinstance(model, torch.fx.GraphModule):
            onnx_bytes = self._trace(torch, _program_module(model), program=True)
        elif isinstance(model, torch.jit.ScriptModule):
            onnx_bytes = self._trace(torch, model)
        elif isinstance(model, torch.nn.Module):
            onnx_bytes = self._export_module(torch, model)
        else:
            raise ExportError(
                f"OnnxFromTorch needs a torch.nn.Module, a TorchScript module or a torch.export program; "
                f"got {type(model).__name__}"
            )
        check_opset(_onnx().load_from_string(onnx_bytes), self.opset)
        self._check_batch_is_free(onnx_bytes)
        return onnx_bytes

    def _export_module(self, torch: Any, model: Any) -> bytes:
        """Traced directly, which keeps the module names in the ONNX node names
        ("/mask_head/Conv"). A model whose shapes flow into operator arguments (an adaptive
        pooling to another tensor's size) cannot be traced with a free batch: the tracer
        records Shape arithmetic that the ONNX symbolics refuse. Such a model goes through
        torch.export first, which resolves every shape but the batch to constants."""
        eval_mode(model)
        try:
            with _native_stdout_silenced():
                return self._trace(torch, model)
        except ExportError as trace_error:
            # torch.export specialises a dimension it sees at size 1, so the example has batch 2.
            example = torch.zeros((max(2, self.input_shape[0]), *self.input_shape[1:]), dtype=torch.float32)
            try:
                program = torch.export.export(
                    model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},), strict=False
                )
            except Exception as export_error:
                raise ExportError(f"{trace_error} torch.export refused the model as well: {export_error}") from export_error
        return self._trace(torch, _program_module(program.module()), program=True)

    def _trace(self, torch: Any, model: Any, program: bool = False) -> bytes:
        model.eval()
        dummy = torch.zeros(self.input_shape, dtype=torch.float32)
        batch_axis = {0: "batch"}
        buffer = io.BytesIO()
        try:
            with torch.no_grad():
                # The TorchScript exporter honours the requested opset, folds BatchNorm into
                # the convolutions in EVAL mode and needs nothing beyond torch itself.
                torch.onnx.export(
                    model,
                    (dummy,),
                    buffer,
                    input_names=[self.input_name],
                    output_names=list(self.output_names),
                    dynamic_axes={self.input_name: batch_axis, **{name: batch_axis for name in self.output_names}},
                    opset_version=self.opset,
                    dynamo=False,
                    do_constant_folding=True,
                    training=torch.onnx.TrainingMode.EVAL,
                )
        except Exception as error:
            hint = f" (a torch.export program is traced at batch {self.input_shape[0]}: {_DYNAMIC_PROGRAM})" if program else ""
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}{hint}: {error}") from error
        return buffer.getvalue()

    def _check_batch_is_free(self, onnx_bytes: bytes) -> None:
        """Run a batch one larger than the traced one: a graph that baked the traced batch
        size into a Reshape fails here rather than on the console."""
        runner = _ort_load(onnx_bytes, "exported model")
        batch = self.input_shape[0] + 1
        images = np.zeros((batch, *self.input_shape[1:]), dtype=np.float32)
        try:
            outputs = runner.run(list(self.output_names), {self.input_name: images})
        except Exception as error:
            raise ExportError(
                f"the exported graph does not run at batch {batch}, so its batch axis is not free. Either the model "
                "reshapes to a literal batch size (write x.flatten(1) or x.view(x.shape[0], -1)), or it is a "
                f"torch.export program exported at a fixed batch ({_DYNAMIC_PROGRAM}). ONNX Runtime said: {error}"
            ) from error
        for name, output in zip(self.output_names, outputs):
            if output.shape[:1] != (batch,):
                raise ExportError(
                    f"output {name!r} has shape {list(output.shape)} at batch {batch}: its axis 0 is not the "
                    "batch; every output must keep the batch axis first."
                )


# -- FP16 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fp16Report:
    """What ``Fp16OnnxFromOnnx`` did: ``fp16_weights`` (initializers stored as float16),
    ``repaired_boundary`` (graph inputs and outputs the converter left float16, given a Cast
    from or to float32) and ``float32_ops`` (op types kept in float32 behind explicit Casts)."""

    fp16_weights: int
    repaired_boundary: tuple[str, ...]
    float32_ops: tuple[str, ...]


@dataclass
class Fp16OnnxFromOnnx:
    """A strongly typed FP16 graph from an FP32 one: every float initializer and interior
    activation float16, the graph's inputs and outputs float32 behind Casts, so radedge's
    float32 preprocess feeds it unchanged and heads decode float32.

    ``onnx``: ONNX bytes, an ``onnx.ModelProto``, or a step producing one. Returns bytes;
    ``.report`` (an ``Fp16Report``) after the call.

    Ops with no dependable FP16 form in the converter (Resize, Min, Max, Range, TopK, ...)
    stay float32 between explicit Casts: the graph is still strongly typed, each tensor's type
    is written in the file, and TensorRT builds it as written.

    Checked after conversion: every graph input and output float32 (those the converter
    left float16, such as a Resize-fed segmentation map, get a Cast at the boundary); every
    Conv/Gemm/MatMul weight and activation float16; onnx.checker; ONNX Runtime loads it.

    ONNX Runtime's CPU provider lacks FP16 kernels for many ops (most convolutions on x86)
    and, when it loads the graph, inserts Casts to float32 around every FP16 node it has no
    kernel for. The accuracy gate run on CPU therefore sees FP16 *storage* rounding of
    weights and activations with float32 arithmetic, while TensorRT builds the graph strongly
    typed and computes in FP16; the figures an engine gives on the target can differ.
    """

    onnx: Any
    report: Fp16Report | None = field(default=None, init=False)

    def __call__(self) -> bytes:
        onnx = _onnx()
        try:
            from onnxconverter_common import float16
        except ImportError:
            raise MissingDependencyError("onnxconverter-common", "Converting ONNX models to FP16") from None
        model = _onnx_model(invoke_if_callable(self.onnx))
        if any(tensor.data_type == _FLOAT16 for tensor in model.graph.initializer):
            # Converted already (by another tool): converting twice corrupts the graph, but
            # its boundary is repaired and everything checked all the same.
            converted = model
        else:
            # float16's largest finite value: the converter's default (1e4) would clip
            # representable constants such as large negative mask fills.
            converted = float16.convert_float_to_float16(
                model, keep_io_types=True, max_finite_val=float(np.finfo(np.float16).max)
            )
        _feed_interior_consumers_fp16(converted)
        repaired = _cast_inputs_from_float32(converted) + _cast_outputs_to_float32(converted)
        _check_float32_boundary(converted)
        _check_compute_in_fp16(onnx, converted)
        fp16_bytes = _serialize(converted, "FP16 model")
        _ort_load(fp16_bytes, "FP16 model")
        kept = sorted({node.op_type for node in converted.graph.node if node.op_type in float16.DEFAULT_OP_BLOCK_LIST})
        self.report = Fp16Report(
            fp16_weights=sum(1 for tensor in converted.graph.initializer if tensor.data_type == _FLOAT16),
            repaired_boundary=tuple(repaired),
            float32_ops=tuple(kept),
        )
        return fp16_bytes


def _elem_type(value_info: Any) -> int:
    return value_info.type.tensor_type.elem_type


def _type_name(elem_type: int | None) -> str:
    if elem_type is None:
        return "an unknown type"
    return _onnx().TensorProto.DataType.Name(elem_type)


def _feed_interior_consumers_fp16(model: Any) -> None:
    """Where a graph output is also read inside the graph (the lesion logits a classifier
    pools under), the converter's boundary Cast to float32 takes over the output's name but
    the interior readers, typed for float16, still read that name. Point them at the
    float16 tensor before the Cast."""
    producer = {name: node for node in model.graph.node for name in node.output}
    for output in model.graph.output:
        cast = producer.get(output.name)
        if cast is None or cast.op_type != "Cast" or not any(a.name == "to" and a.i == _FLOAT for a in cast.attribute):
            continue
        for node in model.graph.node:
            if node is not cast:
                node.input[:] = [cast.input[0] if name == output.name else name for name in node.input]


def _cast_outputs_to_float32(model: Any) -> list[str]:
    """Give every float16 graph output a Cast to float32 under the output's own name;
    returns the names repaired."""
    onnx = _onnx()
    repaired = []
    for output in model.graph.output:
        if _elem_type(output) != _FLOAT16:
            continue
        inner = f"{output.name}_float16"
        for node in model.graph.node:
            node.output[:] = [inner if name == output.name else name for name in node.output]
            node.input[:] = [inner if name == output.name else name for name in node.input]
        model.graph.node.append(
            onnx.helper.make_node("Cast", [inner], [output.name], name=f"{output.name}_to_float32", to=_FLOAT)
        )
        output.type.tensor_type.elem_type = _FLOAT
        repaired.append(output.name)
    return repaired


def _cast_inputs_from_float32(model: Any) -> list[str]:
    """Give every float16 graph input a Cast from float32, read by its former readers;
    returns the names repaired."""
    onnx = _onnx()
    repaired = []
    for value in model.graph.input:
        if _elem_type(value) != _FLOAT16:
            continue
        inner = f"{value.name}_float16"
        for node in model.graph.node:
            node.input[:] = [inner if name == value.name else name for name in node.input]
        model.graph.node.insert(
            0, onnx.helper.make_node("Cast", [value.name], [inner], name=f"{value.name}_to_float16", to=_FLOAT16)
        )
        value.type.tensor_type.elem_type = _FLOAT
        repaired.append(value.name)
    return repaired


def _check_float32_boundary(model: Any) -> None:
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if _elem_type(value) != _FLOAT:
                raise ExportError(
                    f"graph {kind} {value.name!r} of the FP16 model is {_type_name(_elem_type(value))}, not FLOAT: "
                    "the SDK's preprocess and heads exchange float32 with the model"
                )


def _tensor_types(onnx: Any, model: Any) -> dict[str, int]:
    """Element type of every named tensor: initializers, Constant outputs, graph inputs and
    outputs, and what shape inference says of the rest."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {value.name: _elem_type(value) for value in (*inferred.graph.value_info, *model.graph.input, *model.graph.output)}
    types.update({tensor.name: tensor.data_type for tensor in model.graph.initializer})
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    types[node.output[0]] = attribute.t.data_type
    return types


def _check_compute_in_fp16(onnx: Any, model: Any) -> None:
    types = _tensor_types(onnx, model)
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        for role, name in zip(("activation", "weight", "bias"), node.input):
            if name and types.get(name) != _FLOAT16:
                raise ExportError(
                    f"{node.op_type} node {node.name!r} reads its {role} {name!r} as {_type_name(types.get(name))}, "
                    "not float16: the FP16 converter left it out (a node_block_list or an op it cannot type); "
                    "the graph would not be strongly typed FP16"
                )


# -- INT8 Q/DQ ----------------------------------------------------------------------------


def head_final_nodes(model: Any) -> list[str]:
    """Names of the compute nodes (Conv, ConvTranspose, Gemm, MatMul) nearest upstream of
    each graph output of ``model`` (an onnx.ModelProto), walking back through
    ``PASS_THROUGH_OPS`` only: each head's final layer, the one INT8 hurts most because its
    error reaches the logits undamped. An unnamed node comes back as ""; name nodes first."""
    producer = {name: node for node in model.graph.node for name in node.output}
    found: list[str] = []
    for output in model.graph.output:
        pending, seen = [output.name], set()
        while pending:
            node = producer.get(pending.pop())
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in COMPUTE_OPS:
                if node.name not in found:
                    found.append(node.name)
            elif node.op_type in PASS_THROUGH_OPS:
                pending.extend(node.input[:1] if node.op_type in _FIRST_INPUT_ONLY else node.input)
    return found


def _name_unnamed_nodes(model: Any) -> None:
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _graph_inputs(model: Any) -> list[Any]:
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def calibration_feeds(calibration: Any, input_names: Sequence[str], input_rank: int, batch: int = 8) -> list[dict[str, np.ndarray]]:
    """The calibration data as ONNX Runtime feeds, float32.

    ``calibration`` (or a callable giving it): an array float32[S, C, H, W] (split into
    batches of ``batch``), or an iterable of arrays float32[N, C, H, W] or [C, H, W] (one
    sample), or of feed dicts ``{input_name: array}``."""
    calibration = invoke_if_callable(calibration)
    if isinstance(calibration, np.ndarray) and calibration.ndim == input_rank:
        calibration = [calibration[start : start + batch] for start in range(0, len(calibration), batch)]
    feeds = []
    for item in calibration:
        if isinstance(item, Mapping):
            feed = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in item.items()}
        elif len(input_names) == 1:
            feed = {input_names[0]: np.ascontiguousarray(item, dtype=np.float32)}
        else:
            raise ExportError(f"the model has inputs {list(input_names)}: give calibration items as dicts keyed by them")
        if sorted(feed) != sorted(input_names):
            raise ExportError(f"a calibration item feeds {sorted(feed)}; the model's inputs are {sorted(input_names)}")
        for name, value in feed.items():
            if value.ndim == input_rank - 1:
                feed[name] = value[None]
            elif value.ndim != input_rank:
                raise ExportError(
                    f"calibration array for {name!r} has shape {list(value.shape)}; expected [N, C, H, W] "
                    f"(rank {input_rank}) or one sample [C, H, W]"
                )
        feeds.append(feed)
    if not feeds:
        raise ExportError("the calibration data is empty: INT8 scales need images the model will see (a few hundred)")
    return feeds


@dataclass(frozen=True)
class QuantizationReport:
    """What ``QdqOnnxFromOnnx`` did: ``quantizer`` ("onnxruntime" or "modelopt"),
    ``calibrate_method``, ``calibration_samples`` (images), ``quantized_nodes`` (names of
    the nodes reading an int8 weight) and ``kept_float`` (the nodes left in float)."""

    quantizer: str
    calibrate_method: str
    calibration_samples: int
    quantized_nodes: tuple[str, ...]
    kept_float: tuple[str, ...]
    per_channel: bool

    def to_document(self) -> dict[str, Any]:
        """JSON-ready, for the manifest's provenance."""
        return {
            "quantizer": self.quantizer,
            "calibrate_method": self.calibrate_method,
            "calibration_samples": self.calibration_samples,
            "quantized_nodes": len(self.quantized_nodes),
            "kept_float": list(self.kept_float),
            "per_channel": self.per_channel,
        }


_ORT_METHODS = ("minmax", "entropy", "percentile")
_MODELOPT_METHODS = {"minmax": "max", "entropy": "entropy"}
_QUANTIZED_OPS = ("Conv", "Gemm")


def _modelopt_available() -> bool:
    try:
        return importlib.util.find_spec("modelopt.onnx.quantization") is not None
    except ModuleNotFoundError:
        return False


@dataclass
class QdqOnnxFromOnnx:
    """Explicit symmetric INT8 quantization: QuantizeLinear/DequantizeLinear pairs around
    every Conv and Gemm, int8 activations and weights, zero points 0, per-channel weight
    scales (axis 0 of a Conv weight). This is how TensorRT 10 and 11 take INT8: the precision
    lives in the file and the network is built strongly typed (DESIGN.md).

    ``onnx``: ONNX bytes, an ``onnx.ModelProto`` or a step producing one.
    ``calibration``: what ``calibration_feeds`` takes; images as the product's preprocess
    makes them, from the validation set.
    ``keep_float``: node names left unquantized; None: each head's final layer
    (``head_final_nodes``).
    ``calibrate_method``: "minmax", "entropy" or "percentile" (ONNX Runtime only).
    ``quantizer``: "modelopt" (NVIDIA ModelOpt, whose Q/DQ placement follows TensorRT's
    fusion rules), "onnxruntime", or None: ModelOpt where ``modelopt.onnx.quantization``
    imports and the method and ``per_channel`` are ones it has, else ONNX Runtime.

    Returns bytes; ``.report`` (a ``QuantizationReport``) after the call. Checked: Q/DQ
    present, every zero point int8 and 0, per-channel Conv weights on axis 0, no kept-float
    node reads a dequantized weight, ONNX Runtime loads the result. Biases stay float32:
    TensorRT adds them in the layer's output precision and reads no int32 DequantizeLinear.
    """

    onnx: Any
    calibration: Any
    keep_float: Sequence[str] | None = None
    calibrate_method: str = "minmax"
    per_channel: bool = True
    quantizer: str | None = None
    report: QuantizationReport | None = field(default=None, init=False)

    def __call__(self) -> bytes:
        onnx = _onnx()
        model = _onnx_model(invoke_if_callable(self.onnx))
        _name_unnamed_nodes(model)
        inputs = _graph_inputs(model)
        input_names = [value.name for value in inputs]
        feeds = calibration_feeds(self.calibration, input_names, len(inputs[0].type.tensor_type.shape.dim))
        keep_float = list(head_final_nodes(model) if self.keep_float is None else self.keep_float)
        names = {node.name for node in model.graph.node}
        unknown = [name for name in keep_float if name not in names]
        if unknown:
            raise ExportError(f"keep_float names nodes {unknown} that the graph lacks; its Conv/Gemm nodes are "
                              f"{[node.name for node in model.graph.node if node.op_type in _QUANTIZED_OPS]}")
        quantizer = self._choose_quantizer()
        with tempfile.TemporaryDirectory(prefix="radedge-int8-") as directory:
            source, target = Path(directory) / "model.onnx", Path(directory) / "model.int8.onnx"
            onnx.save(model, str(source))
            if quantizer == "modelopt":
                self._quantize_with_modelopt(source, target, feeds, input_names, keep_float)
            else:
                self._quantize_with_onnxruntime(source, target, feeds, keep_float)
            quantized = onnx.load(str(target))
        quantized_nodes = _check_qdq(quantized, keep_float, self.per_channel)
        int8_bytes = _serialize(quantized, "INT8 model")
        _ort_load(int8_bytes, "INT8 model")
        self.report = QuantizationReport(
            quantizer=quantizer,
            calibrate_method=self.calibrate_method,
            calibration_samples=sum(len(next(iter(feed.values()))) for feed in feeds),
            quantized_nodes=tuple(quantized_nodes),
            kept_float=tuple(keep_float),
            per_channel=self.per_channel,
        )
        return int8_bytes

    def _choose_quantizer(self) -> str:
        if self.calibrate_method not in _ORT_METHODS:
            raise ExportError(f"calibrate_method {self.calibrate_method!r} is not one of {list(_ORT_METHODS)}")
        if self.quantizer == "onnxruntime":
            return "onnxruntime"
        if self.quantizer == "modelopt":
            if not _modelopt_available():
                raise MissingDependencyError("nvidia-modelopt[onnx]", "INT8 quantization with NVIDIA ModelOpt")
            if self.calibrate_method not in _MODELOPT_METHODS or not self.per_channel:
                raise ExportError(
                    f"ModelOpt calibrates with {sorted(_MODELOPT_METHODS)} and per-channel weights only; "
                    "use quantizer='onnxruntime' for other settings"
                )
            return "modelopt"
        if self.quantizer is not None:
            raise ExportError(f"quantizer must be 'modelopt', 'onnxruntime' or None; got {self.quantizer!r}")
        usable = self.calibrate_method in _MODELOPT_METHODS and self.per_channel
        return "modelopt" if usable and _modelopt_available() else "onnxruntime"

    def _quantize_with_onnxruntime(self, source: Path, target: Path, feeds: list[dict[str, np.ndarray]],
                                   keep_float: list[str]) -> None:
        _onnxruntime()
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        class Feeds(CalibrationDataReader):
            def __init__(self) -> None:
                self._remaining = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._remaining, None)

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.calibrate_method]
        try:
            with _quantizer_advice_dropped():
                quantize_static(
                    str(source),
                    str(target),
                    Feeds(),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(_QUANTIZED_OPS),
                    per_channel=self.per_channel,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=keep_float,
                    calibrate_method=method,
                    extra_options={
                        "ActivationSymmetric": True,
                        "WeightSymmetric": True,
                        "QuantizeBias": False,
                        # Activations are quantized where a Conv/Gemm reads them, not where one
                        # writes them: TensorRT's placement, which lets it fuse Conv + ReLU.
                        "OpTypesToExcludeOutputQuantization": list(_QUANTIZED_OPS),
                    },
                )
        except Exception as error:
            raise ExportError(f"ONNX Runtime's quantize_static failed: {error}") from error

    def _quantize_with_modelopt(self, source: Path, target: Path, feeds: list[dict[str, np.ndarray]],
                                input_names: list[str], keep_float: list[str]) -> None:
        from modelopt.onnx.quantization import quantize

        # ModelOpt takes the whole set at once, one array per input name.
        calibration_data = {name: np.concatenate([feed[name] for feed in feeds]) for name in input_names}
        try:
            quantize(
                onnx_path=str(source),
                quantize_mode="int8",
                calibration_data=calibration_data,
                calibration_method=_MODELOPT_METHODS[self.calibrate_method],
                calibration_eps=["cpu"],
                op_types_to_quantize=list(_QUANTIZED_OPS),
                # ModelOpt reads these as regular expressions; node names hold '/' and '.'.
                nodes_to_exclude=[f"^{re.escape(name)}$" for name in keep_float],
                output_path=str(target),
                # Weights stored as int8 behind a DequantizeLinear: a quarter of the size
                # in the bundle, and what the checks below read.
                dq_only=True,
                # Its default keeps the unquantized rest in FP16, which ONNX Runtime's CPU
                # provider computes wrongly; FP16 is Fp16OnnxFromOnnx's business anyway.
                high_precision_dtype="fp32",
            )
        except Exception as error:
            raise ExportError(f"NVIDIA ModelOpt's ONNX quantization failed: {error}") from error
        if not target.exists():
            raise ExportError(f"NVIDIA ModelOpt wrote no model to {target}; its log above says why")


@contextlib.contextmanager
def _quantizer_advice_dropped() -> Iterator[None]:
    """Drop ONNX Runtime's advice to run ``quant_pre_process`` first. That step fuses and
    renames nodes for ONNX Runtime's CPU kernels: the head nodes kept in float would lose
    their names, and TensorRT does its own fusion from the plain graph."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _constant_arrays(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    arrays[node.output[0]] = numpy_helper.to_array(attribute.t)
    return arrays


def _check_qdq(model: Any, keep_float: Sequence[str], per_channel: bool) -> list[str]:
    """Check the promises of ``QdqOnnxFromOnnx``; returns the names of the quantized nodes."""
    constants = _constant_arrays(model)
    producer = {name: node for node in model.graph.node for name in node.output}
    qdq = [node for node in model.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not any(node.op_type == "QuantizeLinear" for node in qdq) or not any(node.op_type == "DequantizeLinear" for node in qdq):
        raise ExportError(
            "the quantizer inserted no QuantizeLinear/DequantizeLinear pair: the graph has no Conv or Gemm it "
            "could quantize, or keep_float excluded all of them"
        )
    for node in qdq:
        zero_point = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero_point is None:
            raise ExportError(f"{node.op_type} {node.name!r} has no constant zero point; TensorRT needs int8 zero points of 0")
        if zero_point.dtype != np.int8 or np.any(zero_point != 0):
            raise ExportError(
                f"{node.op_type} {node.name!r} has zero point {zero_point.ravel()[:4].tolist()} of type {zero_point.dtype}: "
                "TensorRT takes symmetric int8 only (ActivationSymmetric / WeightSymmetric)"
            )
    quantized = []
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS or len(node.input) < 2:
            continue
        dequantize = producer.get(node.input[1])
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue
        if node.name in keep_float:
            raise ExportError(f"{node.op_type} {node.name!r} was to stay float but reads the int8 weight {node.input[1]!r}")
        quantized.append(node.name)
        if per_channel and node.op_type == "Conv":
            quantize = producer.get(dequantize.input[0])
            stored = quantize.input[0] if quantize is not None and quantize.op_type == "QuantizeLinear" else dequantize.input[0]
            weight = constants.get(stored)
            scale = constants.get(dequantize.input[1])
            axis = next((attribute.i for attribute in dequantize.attribute if attribute.name == "axis"), 1)
            if weight is None or scale is None or scale.size != weight.shape[0] or (scale.size > 1 and axis != 0):
                raise ExportError(
                    f"Conv {node.name!r}: weight {dequantize.input[0]!r} is not quantized per output channel "
                    f"(scale of {None if scale is None else scale.size} values on axis {axis}); per-tensor scales "
                    "lose the small filters of a network's early layers"
                )
    return quantized


# -- agreement and bundle -----------------------------------------------------------------


@dataclass(frozen=True)
class AgreementReport:
    """How far ONNX Runtime's outputs are from PyTorch's, per output: the largest
    |difference| and the largest |PyTorch value| it is relative to."""

    max_abs_difference: dict[str, float]
    max_abs_reference: dict[str, float]
    samples: int

    def within(self, atol: float, rtol: float = 0.0) -> bool:
        """Every output's worst difference <= atol + rtol * its largest magnitude.

        The relative part matters for heads that sum over a whole image (pooled
        classifiers), where float32 reassociation alone moves large logits by ~1e-5 of
        their size."""
        return all(
            difference <= atol + rtol * self.max_abs_reference[name]
            for name, difference in self.max_abs_difference.items()
        )


def check_onnx_against_torch(
    model: Any, onnx_bytes: bytes, samples: np.ndarray, input_name: str = "image", output_names: Sequence[str] = ("output",)
) -> AgreementReport:
    """Run ``samples`` (float32[S, C, H, W]) through both, one at a time; compare outputs."""
    torch = _torch()
    runner = _ort_load(invoke_if_callable(onnx_bytes), "exported model")
    eval_mode(model)
    worst = {name: 0.0 for name in output_names}
    largest = {name: 0.0 for name in output_names}
    with torch.no_grad():
        for sample in samples:
            batch = sample[None].astype(np.float32)
            reference = model(torch.from_numpy(batch))
            if not isinstance(reference, (tuple, list)):
                reference = (reference,)
            exported = runner.run(list(output_names), {input_name: batch})
            for name, ref, got in zip(output_names, reference, exported):
                worst[name] = max(worst[name], float(np.max(np.abs(ref.numpy() - got))))
                largest[name] = max(largest[name], float(np.max(np.abs(ref.numpy()))))
    return AgreementReport(worst, largest, len(samples))


@dataclass
class SaveBundle:
    """Write ``model.onnx`` and a sealed manifest (checksums, provenance) to a directory.

    ``onnx_bytes``: the FP32 model's bytes, or a step producing them. ``manifest``: a
    ``radedge.spec.Manifest`` (or its document: the model / input / preprocessing / outputs
    / scope sections); provenance gets the exporter version, opset and the ONNX file's
    sha256 added.
    """

    onnx_bytes: bytes | Callable[[], bytes]
    manifest: Manifest | dict[str, Any]
    extra_files: dict[str, bytes] = field(default_factory=dict)

    def __call__(self, directory: str | Path) -> Path:
        onnx_bytes = invoke_if_callable(self.onnx_bytes)
        body = self.manifest.to_document() if isinstance(self.manifest, Manifest) else dict(self.manifest)
        provenance = dict(body.get("provenance", {}))
        provenance.setdefault("exporter", f"radedge {__version__}")
        provenance.setdefault("opset", OPSET)
        provenance["onnx_sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
        body["provenance"] = provenance
        return write_bundle(directory, body, {"model.onnx": onnx_bytes, **self.extra_files})


__all__ = [
    "COMPUTE_OPS",
    "OPSET",
    "PASS_THROUGH_OPS",
    "AgreementReport",
    "ExportError",
    "Fp16OnnxFromOnnx",
    "Fp16Report",
    "OnnxFromTorch",
    "QdqOnnxFromOnnx",
    "QuantizationReport",
    "SaveBundle",
    "calibration_feeds",
    "check_onnx_against_torch",
    "check_opset",
    "default_opset",
    "eval_mode",
    "head_final_nodes",
    "invoke_if_callable",
]
