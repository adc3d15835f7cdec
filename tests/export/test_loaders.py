"""The export loaders: PyTorch -> ONNX with a free batch and a checked opset, strongly typed FP16,
symmetric INT8 Q/DQ, and chaining them Polygraphy-style."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.needs_torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

FLOAT, INT8, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def net():
    from tests.export.two_heads import build_two_head_net

    return build_two_head_net()


@pytest.fixture(scope="module")
def fp32_bytes(net):
    from radedge.export.loaders import OnnxFromTorch
    from tests.export.two_heads import INPUT_SHAPE, OUTPUT_NAMES

    return OnnxFromTorch(net, INPUT_SHAPE, "image", OUTPUT_NAMES)()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(7).normal(size=(12, 1, 32, 32)).astype(np.float32)


def _run(onnx_bytes: bytes, images: np.ndarray) -> list[np.ndarray]:
    runner = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return runner.run(None, {"image": images})


def _torch_outputs(module, images: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        return [output.numpy() for output in module(torch.from_numpy(images))]


def _initializers(model) -> dict:
    return {tensor.name: tensor for tensor in model.graph.initializer}


# -- chaining ----------------------------------------------------------------------------


def test_invoke_if_callable_calls_steps_and_passes_results_through():
    from radedge.export.loaders import invoke_if_callable

    assert invoke_if_callable(b"onnx") == b"onnx"
    assert invoke_if_callable(lambda: b"made") == b"made"


def test_a_chain_is_built_first_and_runs_when_called(fp32_bytes, images):
    from radedge.export.loaders import Fp16OnnxFromOnnx, QdqOnnxFromOnnx

    calls = []

    def exported() -> bytes:
        calls.append(1)
        return fp32_bytes

    int8 = QdqOnnxFromOnnx(exported, images)
    fp16 = Fp16OnnxFromOnnx(exported)
    assert calls == [] and int8.report is None
    int8()
    fp16()
    assert len(calls) == 2 and int8.report is not None and fp16.report is not None


# -- PyTorch -> ONNX ---------------------------------------------------------------------


def test_opset_check_refuses_another_opset():
    from radedge.export.loaders import OPSET, ExportError, check_opset

    make = onnx.helper
    graph = make.make_graph(
        [make.make_node("Relu", ["x"], ["y"])], "relu",
        [make.make_tensor_value_info("x", FLOAT, [1])], [make.make_tensor_value_info("y", FLOAT, [1])],
    )
    check_opset(make.make_model(graph, opset_imports=[make.make_opsetid("", OPSET)]))
    newer = make.make_model(graph, opset_imports=[make.make_opsetid("", 18)])
    with pytest.raises(ExportError, match="opset 18 of the default domain, not the requested 17"):
        check_opset(newer)


def test_export_has_the_pinned_opset_and_a_batch_axis_named_batch(fp32_bytes):
    from radedge.export.loaders import OPSET, default_opset

    model = onnx.load_from_string(fp32_bytes)
    assert default_opset(model) == OPSET == 17
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name


def _program(net):
    import torch

    return torch.export.export(net, (torch.zeros(2, 1, 32, 32),), dynamic_shapes=({0: torch.export.Dim("batch")},))


@pytest.mark.parametrize("kind", ["module", "torchscript", "exported_program"])
def test_every_kind_of_model_exports_and_runs_at_batch_1_and_3(kind, net, images):
    import torch

    from radedge.export.loaders import OnnxFromTorch
    from tests.export.two_heads import INPUT_SHAPE, OUTPUT_NAMES

    model = {"module": lambda: net, "torchscript": lambda: torch.jit.script(net),
             "exported_program": lambda: _program(net).module()}[kind]()
    onnx_bytes = OnnxFromTorch(model, INPUT_SHAPE, "image", OUTPUT_NAMES)()
    for batch in (1, 3):
        exported = _run(onnx_bytes, images[:batch])
        for got, expected in zip(exported, _torch_outputs(net, images[:batch])):
            assert got.shape[0] == batch
            np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_program_exported_at_a_fixed_batch_is_refused(net):
    import torch

    from radedge.export.loaders import ExportError, OnnxFromTorch
    from tests.export.two_heads import INPUT_SHAPE, OUTPUT_NAMES

    fixed = torch.export.export(net, (torch.zeros(2, 1, 32, 32),))
    with pytest.raises(ExportError, match="dynamic batch dimension"):
        OnnxFromTorch(fixed, INPUT_SHAPE, "image", OUTPUT_NAMES)()


def test_a_reshape_to_a_literal_batch_is_refused():
    import torch

    from radedge.export.loaders import ExportError, OnnxFromTorch

    class FixedBatch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, image):
            return self.conv(image).reshape(1, -1)

    with pytest.raises(ExportError, match="at batch 2"):
        OnnxFromTorch(FixedBatch(), (1, 1, 8, 8), "image", ("output",))()


# -- FP16 --------------------------------------------------------------------------------


def test_fp16_is_float16_inside_and_float32_at_the_boundary(fp32_bytes, images):
    from radedge.export.loaders import Fp16OnnxFromOnnx

    step = Fp16OnnxFromOnnx(fp32_bytes)
    fp16_bytes = step()
    model = onnx.load_from_string(fp16_bytes)
    assert all(value.type.tensor_type.elem_type == FLOAT for value in (*model.graph.input, *model.graph.output))
    # The interpolated mask is the Resize-fed output the converter leaves float16.
    assert step.report.repaired_boundary == ("mask_logits",)
    initializers = _initializers(model)
    weights = [node.input[1] for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    assert len(weights) == 4
    assert all(initializers[name].data_type == FLOAT16 for name in weights)
    runner = onnxruntime.InferenceSession(fp16_bytes, providers=["CPUExecutionProvider"])
    assert [output.type for output in runner.get_outputs()] == ["tensor(float)", "tensor(float)"]
    for got, expected in zip(runner.run(None, {"image": images}), _run(fp32_bytes, images)):
        assert got.dtype == np.float32
        # float16 keeps 11 significant bits: ~1e-3 of each value, a few roundings deep.
        np.testing.assert_allclose(got, expected, atol=5e-3 * float(np.abs(expected).max()))


# -- INT8 --------------------------------------------------------------------------------


def test_head_final_nodes_are_the_last_compute_node_of_each_output(fp32_bytes):
    from radedge.export.loaders import head_final_nodes

    model = onnx.load_from_string(fp32_bytes)
    by_name = {node.name: node for node in model.graph.node}
    producer = {name: node for node in model.graph.node for name in node.output}
    finals = head_final_nodes(model)
    assert [by_name[name].op_type for name in finals] == ["Conv", "Gemm"]
    # The mask head's Conv sits behind a Resize; the classifier's Gemm writes its output.
    assert producer["mask_logits"].op_type == "Resize"
    assert producer["mask_logits"].input[0] == by_name[finals[0]].output[0]
    assert producer["class_logits"].name == finals[1]


def _check_symmetric_qdq(model) -> None:
    constants = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    qdq = [node for node in model.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert {node.op_type for node in qdq} == {"QuantizeLinear", "DequantizeLinear"}
    for node in qdq:
        zero_point = constants[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name


def test_int8_is_symmetric_per_channel_with_the_heads_in_float(net, fp32_bytes, images):
    from radedge.export.loaders import QdqOnnxFromOnnx, head_final_nodes

    step = QdqOnnxFromOnnx(fp32_bytes, images, quantizer="onnxruntime")
    int8_bytes = step()
    model = onnx.load_from_string(int8_bytes)
    _check_symmetric_qdq(model)
    producer = {name: node for node in model.graph.node for name in node.output}
    constants = _initializers(model)
    convs = {node.name: node for node in model.graph.node if node.op_type in ("Conv", "Gemm")}
    finals = head_final_nodes(onnx.load_from_string(fp32_bytes))
    for name, node in convs.items():
        weight_source = producer.get(node.input[1])
        if name in finals:
            assert weight_source is None and constants[node.input[1]].data_type == FLOAT, name
            continue
        assert weight_source.op_type == "DequantizeLinear"
        axis = {attribute.name: attribute.i for attribute in weight_source.attribute}.get("axis")
        weight = onnx.numpy_helper.to_array(constants[weight_source.input[0]])
        scale = onnx.numpy_helper.to_array(constants[weight_source.input[1]])
        assert weight.dtype == np.int8 and axis == 0 and scale.shape == (weight.shape[0],), name
    report = step.report
    assert report.quantizer == "onnxruntime" and report.calibrate_method == "minmax"
    assert report.calibration_samples == 12 and report.per_channel
    assert set(report.kept_float) == set(finals) and len(report.quantized_nodes) == 2
    for got, expected in zip(_run(int8_bytes, images), _run(fp32_bytes, images)):
        # 8-bit activations: a few per cent of the output's range on the calibration data.
        assert float(np.abs(got - expected).max()) < 0.05 * float(np.abs(expected).max())


def test_keep_float_overrides_the_heads_and_names_must_exist(fp32_bytes, images):
    from radedge.export.loaders import ExportError, QdqOnnxFromOnnx

    everything = QdqOnnxFromOnnx(fp32_bytes, list(images), keep_float=[], quantizer="onnxruntime")
    everything()
    assert everything.report.kept_float == () and len(everything.report.quantized_nodes) == 4
    assert everything.report.calibration_samples == 12  # [C, H, W] items, one sample each
    with pytest.raises(ExportError, match="lacks"):
        QdqOnnxFromOnnx(fp32_bytes, images, keep_float=["no such node"], quantizer="onnxruntime")()


def test_calibration_takes_feed_dicts_and_refuses_wrong_names(fp32_bytes, images):
    from radedge.export.loaders import ExportError, QdqOnnxFromOnnx

    step = QdqOnnxFromOnnx(fp32_bytes, lambda: ({"image": images[i : i + 4]} for i in range(0, 12, 4)),
                           quantizer="onnxruntime")
    step()
    assert step.report.calibration_samples == 12
    with pytest.raises(ExportError, match="feeds \\['pixels'\\]"):
        QdqOnnxFromOnnx(fp32_bytes, [{"pixels": images}], quantizer="onnxruntime")()
    with pytest.raises(ExportError, match="empty"):
        QdqOnnxFromOnnx(fp32_bytes, [], quantizer="onnxruntime")()


def test_modelopt_quantizer(fp32_bytes, images):
    pytest.importorskip(
        "modelopt.onnx.quantization",
        reason="NVIDIA ModelOpt is not installed (pip install 'nvidia-modelopt[onnx]', which pulls onnxruntime-gpu)",
    )
    from radedge.export.loaders import QdqOnnxFromOnnx, head_final_nodes

    step = QdqOnnxFromOnnx(fp32_bytes, images, quantizer="modelopt")
    int8_bytes = step()
    assert step.report.quantizer == "modelopt"
    assert set(step.report.kept_float) == set(head_final_nodes(onnx.load_from_string(fp32_bytes)))
    _check_symmetric_qdq(onnx.load_from_string(int8_bytes))
    for got, expected in zip(_run(int8_bytes, images), _run(fp32_bytes, images)):
        assert float(np.abs(got - expected).max()) < 0.05 * float(np.abs(expected).max())


# -- a reference model -------------------------------------------------------------------


def test_bone_tumor_checkpoint_to_fp16_and_int8():
    from radedge.export.intake import load_checkpoint
    from radedge.export.loaders import Fp16OnnxFromOnnx, OnnxFromTorch, QdqOnnxFromOnnx
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import VALIDATION_SEED

    model_recipe = recipe("bone-tumor")
    checkpoint = load_checkpoint(model_recipe.checkpoint_path, recipe=model_recipe)
    images = np.stack([model_recipe.sample(VALIDATION_SEED + seed)["image"] for seed in range(6)])
    fp32 = OnnxFromTorch(checkpoint.module, (1, *model_recipe.spec.shape), model_recipe.input_name,
                         model_recipe.output_names)
    fp32_bytes = fp32()
    fp16_bytes = Fp16OnnxFromOnnx(fp32_bytes)()
    int8 = QdqOnnxFromOnnx(fp32_bytes, images, quantizer="onnxruntime")
    int8_bytes = int8()
    assert len(int8.report.kept_float) == 2  # the mask head's Conv and the classifier's last Gemm

    reference = dict(zip(model_recipe.output_names, _run(fp32_bytes, images)))
    torch_outputs = dict(zip(model_recipe.output_names, _torch_outputs(checkpoint.module, images)))
    # train.py's gate: pooled logits move by ~1e-4 of their size under float32 reassociation.
    logits = torch_outputs["tumor_logits"]
    np.testing.assert_allclose(reference["tumor_logits"], logits, atol=1e-4 + 1e-3 * float(np.abs(logits).max()))
    for onnx_bytes in (fp16_bytes, int8_bytes):
        outputs = dict(zip(model_recipe.output_names, _run(onnx_bytes, images)))
        assert all(value.dtype == np.float32 for value in outputs.values())
        np.testing.assert_array_equal(outputs["tumor_logits"].argmax(1), reference["tumor_logits"].argmax(1))
        agreement = np.mean((outputs["lesion_logits"] >= 0) == (reference["lesion_logits"] >= 0))
        assert agreement > 0.99


def test_fp16_repairs_a_float16_boundary_left_by_another_converter(fp32_bytes, images):
    from onnxconverter_common import float16

    from radedge.export.loaders import Fp16OnnxFromOnnx

    all_half = float16.convert_float_to_float16(onnx.load_from_string(fp32_bytes), keep_io_types=False)
    assert all_half.graph.input[0].type.tensor_type.elem_type == FLOAT16
    step = Fp16OnnxFromOnnx(all_half)
    repaired = onnx.load_from_string(step())
    assert set(step.report.repaired_boundary) == {"image", "mask_logits", "class_logits"}
    assert all(value.type.tensor_type.elem_type == FLOAT for value in (*repaired.graph.input, *repaired.graph.output))
    for got, expected in zip(_run(repaired.SerializeToString(), images), _run(fp32_bytes, images)):
        np.testing.assert_allclose(got, expected, atol=5e-3 * float(np.abs(expected).max()))
