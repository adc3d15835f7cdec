"""Make ``tiny_bone_tumor/``: a hand-written bundle with the bone-tumor contract, for fast tests.

    python tests/models/make_tiny.py

Its behaviour is known in closed form, so tests can predict its outputs exactly:
``lesion_logits`` (float32[1, 1, 64, 64]) = 8 * (x - 1), i.e. positive where the
normalised input x exceeds 1 (display intensity above 0.75 with mean 0.5, std 0.25);
``tumor_logits`` (float32[1, 3]) = mean(x) * [0, 1, 2], so the brighter the image the
more "malignant". Built with onnx.helper only: no torch needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from radedge.bundle import write_bundle

SIZE = 64
HERE = Path(__file__).resolve().parent


def tiny_model() -> bytes:
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, SIZE, SIZE])
    lesion = helper.make_tensor_value_info("lesion_logits", TensorProto.FLOAT, [1, 1, SIZE, SIZE])
    tumor = helper.make_tensor_value_info("tumor_logits", TensorProto.FLOAT, [1, 3])
    constants = [
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(8.0, dtype=np.float32), "gain"),
        numpy_helper.from_array(np.array([[0.0, 1.0, 2.0]], dtype=np.float32), "class_weights"),
        numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "mean_shape"),
    ]
    nodes = [
        helper.make_node("Sub", ["image", "one"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["lesion_logits"]),
        helper.make_node("ReduceMean", ["image"], ["mean4d"], keepdims=1),
        helper.make_node("Reshape", ["mean4d", "mean_shape"], ["mean"]),
        helper.make_node("MatMul", ["mean", "class_weights"], ["tumor_logits"]),
    ]
    graph = helper.make_graph(nodes, "tiny_bone_tumor", [image], [lesion, tumor], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="radedge tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def manifest(threshold: float = 0.5) -> dict:
    return {
        "model": {"id": "tiny-bone-tumor", "version": "1.0.0", "description": "closed-form test model"},
        "input": {"name": "image", "shape": [1, 1, SIZE, SIZE], "dtype": "float32", "layout": "NCHW"},
        "preprocessing": {"voi": "file", "resize": "letterbox", "pad_value": 0.0, "mean": [0.5], "std": [0.25]},
        "outputs": [
            {"name": "lesion_logits", "kind": "segmentation", "labels": ["lesion"], "activation": "sigmoid",
             "decode": {"threshold": 0.5}},
            {"name": "tumor_logits", "kind": "classification", "labels": ["no_tumour", "benign", "malignant"],
             "activation": "softmax",
             "flags": [{"code": "SUSPECTED_MALIGNANT_BONE_LESION", "title": "Suspected malignant bone lesion",
                        "label": "malignant", "threshold": threshold}]},
        ],
        "scope": {"modalities": ["DX", "CR"], "presentation_intents": ["FOR PRESENTATION"],
                  "body_parts": ["FEMUR", "TIBIA", "HUMERUS"]},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "tiny_bone_tumor"
    write_bundle(out, manifest(), {"model.onnx": tiny_model()})
    print(out)


if __name__ == "__main__":
    main()
