"""Make the tiny test bundles: hand-written ONNX models whose outputs are known in closed form.

    python tests/models/make_tiny.py [OUT_DIR]

Every model takes ``image`` float32 [1, 1, 64, 64], the letterboxed input normalised with
mean 0.5 and std 0.25, so ``x = (v - 0.5) / 0.25`` for a display value v in [0, 1]. Built
with onnx.helper only: no torch needed. One bundle per head kind, and the combinations a
console runs:

- ``tiny_bone_tumor``: segmentation + classification. Head ``lesion`` reads
  ``lesion_logits`` [1, 1, 64, 64] = 8 (x - 1), positive where v > 0.75, flagged when the
  lesion covers 500 mm² or more; head ``tumor`` reads ``tumor_logits`` [1, 3] =
  mean(x) * [0, 1, 2], the brighter the image the more "malignant". Long bones, DX / CR.
- ``tiny_detector``: a dense one-level detector (stride 8). Per 8 x 8 cell, with p the
  cell's mean of x: ``cls`` [1, 2, 8, 8] = (8 (p - 1), 8 (-p - 1)) for ``lesion`` (bright
  cells) and ``implant`` (dark cells); ``reg`` [1, 4, 8, 8] = 0.5 strides on every side, so
  each box is exactly its cell. Spine, DX.
- ``tiny_spine``: two heatmap heads, after the vcf design. ``levels`` [1, 3, 64, 64]: L1, L2,
  L3 are x inside the rows [0, 21), [21, 43), [43, 64) of the input and -20 elsewhere, decoded
  by argmax (one landmark per level: the brightest point of its band); ``fracture``
  [1, 1, 64, 64] = 8 (x - 1.5), positive where v > 0.875, decoded as sigmoid peaks. The flag
  names the level nearest to each fracture point. Lumbar spine, DX.
- ``tiny_bone_quality``: three classification heads, after the bone-quality design.
  ``blastic`` [1, 1] = 10 (max(x) - 1.2), ``lytic`` [1, 1] = 10 (-min(x) - 1.2), and
  ``quality`` [1, 4] = (-b - l, b - l, l - b, b + l) over normal / blastic / lytic / mixed,
  the combination the model makes of the two (b, l their logits); ``display_head`` is
  ``quality``. A flag needs both sub-heads together. CT.
- ``tiny_tumor_cls``: a second-stage classifier with a class activation map, after the
  tumor-cls design: it analyses the region ``tiny_bone_tumor``'s ``lesion`` head finds.
  ``tumor`` [1, 2] = (0, 4 mean(x)) over benign / malignant; ``tumor_cam`` [1, 2, 16, 16] =
  the 4 x 4 means of x, negated for benign. Long bones, DX / CR.
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
LONG_BONES = ["FEMUR", "TIBIA", "HUMERUS"]
PRESENTATION = {"presentation_intents": ["FOR PRESENTATION"]}


def _model(name: str, nodes, outputs: dict[str, list[int]], constants: dict[str, np.ndarray]) -> bytes:
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, SIZE, SIZE])
    values = [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape) for out, shape in outputs.items()]
    initializers = [numpy_helper.from_array(np.asarray(v, dtype=v.dtype), key) for key, v in constants.items()]
    graph = helper.make_graph(nodes, name, [image], values, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="radedge tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _input(name: str) -> dict:
    return {"name": "image", "shape": [1, 1, SIZE, SIZE], "dtype": "float32", "layout": "NCHW"}


PREPROCESSING = {"voi": "file", "resize": "letterbox", "pad_value": 0.0, "mean": [0.5], "std": [0.25]}


def tiny_model() -> bytes:
    """``tiny_bone_tumor``'s model."""
    return _model(
        "tiny_bone_tumor",
        [
            helper.make_node("Sub", ["image", "one"], ["centred"]),
            helper.make_node("Mul", ["centred", "gain"], ["lesion_logits"]),
            helper.make_node("ReduceMean", ["image"], ["mean4d"], keepdims=1),
            helper.make_node("Reshape", ["mean4d", "mean_shape"], ["mean"]),
            helper.make_node("MatMul", ["mean", "class_weights"], ["tumor_logits"]),
        ],
        {"lesion_logits": [1, 1, SIZE, SIZE], "tumor_logits": [1, 3]},
        {
            "one": _f32(1.0),
            "gain": _f32(8.0),
            "class_weights": _f32([[0.0, 1.0, 2.0]]),
            "mean_shape": np.array([1, 1], dtype=np.int64),
        },
    )


def manifest(threshold: float = 0.5) -> dict:
    """``tiny_bone_tumor``'s manifest, its flag at ``threshold``."""
    return {
        "model": {"id": "tiny-bone-tumor", "version": "1.0.0", "description": "closed-form test model"},
        "input": _input("image"),
        "preprocessing": PREPROCESSING,
        "outputs": [
            {"name": "lesion", "tensor": "lesion_logits", "kind": "segmentation", "labels": ["lesion"],
             "activation": "sigmoid",
             "decode": {"threshold": 0.5},
             "flags": [{"code": "LARGE_BONE_LESION", "title": "Bone lesion over 5 cm2", "label": "lesion",
                        "threshold": 500.0}]},
            {"name": "tumor", "tensor": "tumor_logits", "kind": "classification",
             "labels": ["no_tumour", "benign", "malignant"],
             "activation": "softmax",
             "flags": [{"code": "SUSPECTED_MALIGNANT_BONE_LESION", "title": "Suspected malignant bone lesion",
                        "label": "malignant", "threshold": threshold}]},
        ],
        "scope": {"modalities": ["DX", "CR"], **PRESENTATION, "body_parts": LONG_BONES},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }


def detector() -> tuple[dict, bytes]:
    model = _model(
        "tiny_detector",
        [
            helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Sub", ["pooled", "one"], ["bright"]),
            helper.make_node("Neg", ["pooled"], ["negated"]),
            helper.make_node("Sub", ["negated", "one"], ["dark"]),
            helper.make_node("Concat", ["bright", "dark"], ["centred"], axis=1),
            helper.make_node("Mul", ["centred", "gain"], ["cls"]),
            helper.make_node("Mul", ["pooled", "zero"], ["zeros"]),
            helper.make_node("Add", ["zeros", "half"], ["halves"]),
            helper.make_node("Concat", ["halves", "halves", "halves", "halves"], ["reg"], axis=1),
        ],
        {"cls": [1, 2, 8, 8], "reg": [1, 4, 8, 8]},
        {"one": _f32(1.0), "gain": _f32(8.0), "zero": _f32(0.0), "half": _f32(0.5)},
    )
    document = {
        "model": {"id": "tiny-detector", "version": "1.0.0", "description": "closed-form dense detector"},
        "input": _input("image"),
        "preprocessing": PREPROCESSING,
        "outputs": [
            {"name": "findings", "kind": "detection", "labels": ["lesion", "implant"], "activation": "sigmoid",
             "decode": {"format": "dense", "levels": [{"scores": "cls", "distances": "reg", "stride": 8}],
                        "score_threshold": 0.5, "iou_threshold": 0.5, "max_detections": 64},
             "flags": [{"code": "SPINE_LESION", "title": "Suspected spine {label}", "label": "lesion",
                        "threshold": 0.9}]},
        ],
        "scope": {"modalities": ["DX"], **PRESENTATION, "body_parts": ["LSPINE", "TSPINE", "CSPINE"]},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }
    return document, model


LEVEL_BANDS = [(0, 21), (21, 43), (43, 64)]


def spine() -> tuple[dict, bytes]:
    inside = np.zeros((1, 3, SIZE, SIZE), np.float32)
    for channel, (top, bottom) in enumerate(LEVEL_BANDS):
        inside[0, channel, top:bottom] = 1.0
    model = _model(
        "tiny_spine",
        [
            helper.make_node("Mul", ["image", "inside"], ["kept"]),
            helper.make_node("Add", ["kept", "outside"], ["levels"]),
            helper.make_node("Sub", ["image", "fracture_level"], ["above"]),
            helper.make_node("Mul", ["above", "gain"], ["fracture"]),
        ],
        {"levels": [1, 3, SIZE, SIZE], "fracture": [1, 1, SIZE, SIZE]},
        {"inside": inside, "outside": (inside - 1.0) * 20.0, "fracture_level": _f32(1.5), "gain": _f32(8.0)},
    )
    document = {
        "model": {"id": "tiny-spine", "version": "1.0.0", "description": "closed-form vertebral level and fracture maps"},
        "input": _input("image"),
        "preprocessing": PREPROCESSING,
        "outputs": [
            {"name": "levels", "kind": "heatmap", "labels": ["L1", "L2", "L3"], "activation": "none",
             "decode": {"mode": "argmax", "threshold": 0.0}},
            {"name": "fracture", "kind": "heatmap", "labels": ["fracture"], "activation": "sigmoid",
             "decode": {"mode": "peaks", "threshold": 0.5, "k": 4, "radius": 2},
             "flags": [{"code": "POSSIBLE_COMPRESSION_FRACTURE", "title": "Possible compression fracture at {where}",
                        "label": "fracture", "threshold": 0.5, "locate_with": "levels"}]},
        ],
        "scope": {"modalities": ["DX"], **PRESENTATION, "body_parts": ["LSPINE"]},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }
    return document, model


def bone_quality() -> tuple[dict, bytes]:
    model = _model(
        "tiny_bone_quality",
        [
            helper.make_node("ReduceMax", ["image"], ["high4d"], keepdims=1),
            helper.make_node("Reshape", ["high4d", "one_by_one"], ["high"]),
            helper.make_node("Sub", ["high", "level"], ["high_over"]),
            helper.make_node("Mul", ["high_over", "gain"], ["blastic"]),
            helper.make_node("ReduceMin", ["image"], ["low4d"], keepdims=1),
            helper.make_node("Reshape", ["low4d", "one_by_one"], ["low"]),
            helper.make_node("Neg", ["low"], ["depth"]),
            helper.make_node("Sub", ["depth", "level"], ["low_under"]),
            helper.make_node("Mul", ["low_under", "gain"], ["lytic"]),
            helper.make_node("Concat", ["blastic", "lytic"], ["both"], axis=1),
            helper.make_node("MatMul", ["both", "combine"], ["quality"]),
        ],
        {"blastic": [1, 1], "lytic": [1, 1], "quality": [1, 4]},
        {
            "one_by_one": np.array([1, 1], dtype=np.int64),
            "level": _f32(1.2),
            "gain": _f32(10.0),
            # normal = -b - l, blastic = b - l, lytic = l - b, mixed = b + l
            "combine": _f32([[-1.0, 1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]]),
        },
    )
    document = {
        "model": {"id": "tiny-bone-quality", "version": "1.0.0", "description": "closed-form bone quality heads"},
        "input": _input("image"),
        "preprocessing": PREPROCESSING,
        "display_head": "quality",
        "outputs": [
            {"name": "blastic", "kind": "classification", "labels": ["blastic"], "activation": "sigmoid",
             "flags": [{"code": "MIXED_METASTASIS", "title": "Blastic and lytic bone: mixed metastasis?",
                        "label": "blastic", "threshold": 0.5,
                        "requires": [{"head": "lytic", "label": "lytic", "threshold": 0.5}]}]},
            {"name": "lytic", "kind": "classification", "labels": ["lytic"], "activation": "sigmoid"},
            {"name": "quality", "kind": "classification", "labels": ["normal", "blastic", "lytic", "mixed"],
             "activation": "softmax"},
        ],
        "scope": {"modalities": ["CT"]},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }
    return document, model


def tumor_cls() -> tuple[dict, bytes]:
    model = _model(
        "tiny_tumor_cls",
        [
            helper.make_node("ReduceMean", ["image"], ["mean4d"], keepdims=1),
            helper.make_node("Reshape", ["mean4d", "one_by_one"], ["mean"]),
            helper.make_node("MatMul", ["mean", "class_weights"], ["tumor"]),
            helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Neg", ["pooled"], ["negated"]),
            helper.make_node("Concat", ["negated", "pooled"], ["tumor_cam"], axis=1),
        ],
        {"tumor": [1, 2], "tumor_cam": [1, 2, 16, 16]},
        {"one_by_one": np.array([1, 1], dtype=np.int64), "class_weights": _f32([[0.0, 4.0]])},
    )
    document = {
        "model": {"id": "tiny-tumor-cls", "version": "1.0.0", "description": "closed-form second-stage classifier"},
        "input": _input("image"),
        "preprocessing": PREPROCESSING,
        "input_region": {"model": "tiny-bone-tumor", "head": "lesion", "label": "lesion", "margin": 0.1},
        "display_head": "tumor",
        "outputs": [
            {"name": "tumor", "kind": "classification", "labels": ["benign", "malignant"], "activation": "softmax",
             "flags": [{"code": "MALIGNANT_REGION", "title": "Region classified malignant", "label": "malignant",
                        "threshold": 0.9}]},
            {"name": "tumor_cam", "kind": "cam", "labels": ["benign", "malignant"], "activation": "none",
             "decode": {"explains": "tumor", "floor": 0.0}},
        ],
        "scope": {"modalities": ["DX", "CR"], **PRESENTATION, "body_parts": LONG_BONES},
        "provenance": {"made_by": "tests/models/make_tiny.py"},
    }
    return document, model


def bundles() -> dict[str, tuple[dict, bytes]]:
    """Every tiny bundle by folder name: (manifest, model.onnx)."""
    return {
        "tiny_bone_tumor": (manifest(), tiny_model()),
        "tiny_detector": detector(),
        "tiny_spine": spine(),
        "tiny_bone_quality": bone_quality(),
        "tiny_tumor_cls": tumor_cls(),
    }


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for name, (document, model) in bundles().items():
        print(write_bundle(root / name, document, {"model.onnx": model}))


if __name__ == "__main__":
    main()
