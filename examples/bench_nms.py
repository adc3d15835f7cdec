"""Detection post-processing benchmark: radedge's NMS and dense decode against numpy and OpenCV.

    .venv/bin/python examples/bench_nms.py [--threads N] [--seconds S]

Two workloads, every variant timed in this process, taking turns:

1. NMS of 10 000 boxes as a detector emits them before NMS: 300 objects in a 1024-pixel
   image, about 33 jittered boxes each, 5 classes, IoU threshold 0.5. Class-aware and
   class-agnostic, each with
     radedge     radedge.ops.detection.nms, keeping up to 100 boxes (what a detector keeps)
                 and keeping all of them (what the others compute), on CPU threads;
     numpy       the usual numpy greedy NMS: sort, then for each kept box one vectorised
                 IoU against the boxes after it;
     OpenCV      cv2.dnn.NMSBoxesBatched (class-aware) or cv2.dnn.NMSBoxes.
2. Dense decode of a 3-level FCOS head (strides 8, 16, 32) for a 1024 x 1024 input, 7
   classes, with centerness: 150 528 (cell, class) scores, float32 and float16.
     radedge     radedge.ops.detection.decode_dense: sigmoid, sqrt(cls * ctr), threshold 0.05,
                 top 1000, class-aware NMS at 0.6, 100 detections, mapped to source pixels;
     numpy       the same steps in numpy (sigmoid over every score, np.nonzero, argsort)
                 with cv2.dnn.NMSBoxesBatched for the NMS.

The script checks that the variants agree (the same kept boxes), prints the hardware,
medians and 95th percentiles, the ratios, and Markdown tables for docs/performance.md.
Where a CUDA device is visible it also times nms on it from host arrays; that includes
device allocation, copies and a synchronisation, so it bounds the kernels' time from
above (the enqueue-only C++ API, radedge::nms_cuda, is what a CUDA graph replays).
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from benchlib import cpu_model, measure, resolved_threads
from radedge._native import available_devices, kernels
from radedge.ops.detection import decode_dense, nms
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

IOU_THRESHOLD = 0.5
CLASSES = 5


def clustered_boxes(count: int = 10_000, objects: int = 300, classes: int = CLASSES, seed: int = 20261122):
    """float32 [count, 4] x1 y1 x2 y2 boxes around `objects` objects of one class each,
    float32 [count] scores and int32 [count] classes."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1024, (objects, 2))
    sizes = rng.uniform(16, 160, (objects, 2))
    object_classes = rng.integers(0, classes, objects)
    which = rng.integers(0, objects, count)
    centre = centres[which] + rng.normal(0, 0.08, (count, 2)) * sizes[which]
    size = sizes[which] * rng.uniform(0.8, 1.25, (count, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0.05, 1.0, count).astype(np.float32)
    return boxes, scores, object_classes[which].astype(np.int32)


def numpy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None, threshold: float) -> np.ndarray:
    """Greedy NMS in numpy, class-aware when `classes` is given: highest score first (ties
    to the lower index), IoU > threshold suppresses."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    b = boxes[order]
    area = np.maximum(0, b[:, 2] - b[:, 0]) * np.maximum(0, b[:, 3] - b[:, 1])
    labels = None if classes is None else classes[order]
    removed = np.zeros(len(order), bool)
    kept = []
    for i in range(len(order)):
        if removed[i]:
            continue
        kept.append(order[i])
        rest = slice(i + 1, None)
        width = np.maximum(0, np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]))
        height = np.maximum(0, np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]))
        intersection = width * height
        with np.errstate(invalid="ignore", divide="ignore"):
            suppress = intersection / (area[i] + area[rest] - intersection) > threshold
        if labels is not None:
            suppress &= labels[rest] == labels[i]
        removed[rest] |= suppress
    return np.asarray(kept, dtype=np.int64)


def xywh(boxes: np.ndarray) -> np.ndarray:
    """OpenCV's Rect2d layout."""
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)


def fcos_head(size: int = 1024, classes: int = 7, dtype: str = "float32", background: float = -8.0, seed: int = 7):
    """A 3-level FCOS head for a size x size input: background class logits around
    `background` (a focal-loss-trained head puts most cells at sigmoid 1e-4 to 1e-3), six
    lesion-like objects per class map, distances to the object edges in strides."""
    rng = np.random.default_rng(seed)
    levels = []
    for stride in (8, 16, 32):
        h = w = size // stride
        logits = rng.normal(background, 1.5, (1, classes, h, w))
        centerness = rng.normal(-1.0, 1.5, (1, 1, h, w))
        for _ in range(6):
            k = rng.integers(0, classes)
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), max(1, h // 12)
            logits[0, k, max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] += rng.uniform(4.0, 9.0)
        distances = rng.uniform(0.5, 6.0, (1, 4, h, w))
        levels.append(tuple(a.astype(dtype) for a in (logits, distances, centerness)))
    return levels


def numpy_decode(levels, strides, geometry, score_threshold=0.05, top_k=1000, iou=0.6, max_detections=100):
    """decode_dense's steps in numpy + OpenCV: boxes [D, 4] in source pixels, scores, classes."""
    all_scores, all_boxes, all_classes = [], [], []
    for (logits, distances, centerness), stride in zip(levels, strides):
        cls = 1.0 / (1.0 + np.exp(-logits[0].astype(np.float32)))
        ctr = 1.0 / (1.0 + np.exp(-centerness[0, 0].astype(np.float32)))
        score = np.sqrt(cls * ctr)
        k, y, x = np.nonzero(score > score_threshold)
        d = distances[0][:, y, x].astype(np.float32) * stride
        cx, cy = (x + 0.5) * stride, (y + 0.5) * stride
        all_boxes.append(np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], axis=1))
        all_scores.append(score[k, y, x])
        all_classes.append(k)
    scores = np.concatenate(all_scores)
    boxes = np.concatenate(all_boxes)
    classes = np.concatenate(all_classes)
    top = np.argsort(-scores, kind="stable")[:top_k]
    keep = cv2.dnn.NMSBoxesBatched(xywh(boxes[top]), scores[top], classes[top].astype(np.int32), 0.0, iou)
    keep = top[np.asarray(keep, dtype=np.int64).reshape(-1)]
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_detections]
    g = geometry
    mapped = boxes[keep].astype(np.float64)
    mapped[:, 0::2] = np.clip((mapped[:, 0::2] - g.offset_x) / g.scale_x, 0, g.source_columns)
    mapped[:, 1::2] = np.clip((mapped[:, 1::2] - g.offset_y) / g.scale_y, 0, g.source_rows)
    return mapped.astype(np.float32), scores[keep], classes[keep]








def report(title: str, results: dict, labels: dict, baseline: str) -> None:
    median = {name: float(np.median(t)) for name, t in results.items()}
    p95 = {name: float(np.percentile(t, 95)) for name, t in results.items()}
    print(f"\n{title}")
    for name, label in labels.items():
        ratio = median[name] / median[baseline]
        print(f"  {label:<58} median {median[name]:9.3f} ms   p95 {p95[name]:9.3f} ms   "
              f"{ratio:7.2f}x of {baseline}   (n={len(results[name])})")
    print(f"\n| variant | median (ms) | p95 (ms) | / {baseline} |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in labels.items():
        print(f"| {label} | {median[name]:.3f} | {p95[name]:.3f} | {median[name] / median[baseline]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for radedge (0: default)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds spent measuring each variant")
    parser.add_argument("--background", type=float, default=-8.0,
                        help="mean background class logit of the dense head (higher: more candidates)")
    args = parser.parse_args()
    threads = resolved_threads(args.threads)
    print(f"CPU      {cpu_model()}")
    print(f"cores    {os.cpu_count()} logical; radedge threads {threads}; OpenCV threads {cv2.getNumThreads()}")
    print(f"software numpy {np.__version__}, OpenCV {cv2.__version__}, "
          f"radedge._kernels {kernels().build_info()['version']}")

    boxes, scores, classes = clustered_boxes()
    rects = xywh(boxes)
    for class_aware in (True, False):
        labels_or_none = classes if class_aware else None
        ours = nms(boxes, scores, labels_or_none, IOU_THRESHOLD, threads=threads)
        numpy_keep = numpy_nms(boxes, scores, labels_or_none, IOU_THRESHOLD)
        if class_aware:
            theirs = cv2.dnn.NMSBoxesBatched(rects, scores, classes, 0.0, IOU_THRESHOLD)
            opencv = lambda: cv2.dnn.NMSBoxesBatched(rects, scores, classes, 0.0, IOU_THRESHOLD)  # noqa: E731
        else:
            theirs = cv2.dnn.NMSBoxes(rects, scores, 0.0, IOU_THRESHOLD)
            opencv = lambda: cv2.dnn.NMSBoxes(rects, scores, 0.0, IOU_THRESHOLD)  # noqa: E731
        theirs = np.asarray(theirs).reshape(-1)
        agree_numpy = np.array_equal(ours, numpy_keep)
        agree_opencv = sorted(ours.tolist()) == sorted(theirs.tolist())
        kind = "class-aware (5 classes)" if class_aware else "class-agnostic"
        print(f"\nNMS of {len(boxes)} boxes, {kind}: {len(ours)} kept; same as numpy: "
              f"{'yes' if agree_numpy else 'NO'}; same set as OpenCV: {'yes' if agree_opencv else 'NO'}")
        variants = {
            "radedge": lambda: nms(boxes, scores, labels_or_none, IOU_THRESHOLD, threads=threads),
            "radedge top 100": lambda: nms(boxes, scores, labels_or_none, IOU_THRESHOLD, 100, threads=threads),
            "radedge 1 thread": lambda: nms(boxes, scores, labels_or_none, IOU_THRESHOLD, threads=1),
            "numpy": lambda: numpy_nms(boxes, scores, labels_or_none, IOU_THRESHOLD),
            "OpenCV": opencv,
        }
        labels = {
            "radedge": f"radedge nms, all kept ({threads} threads)",
            "radedge top 100": f"radedge nms, max_detections=100 ({threads} threads)",
            "radedge 1 thread": "radedge nms, all kept (1 thread)",
            "numpy": "numpy greedy NMS",
            "OpenCV": "cv2.dnn.NMSBoxesBatched" if class_aware else "cv2.dnn.NMSBoxes",
        }
        if "cuda" in available_devices():
            gpu = nms(boxes, scores, labels_or_none, IOU_THRESHOLD, device="cuda")
            print(f"CUDA nms agrees with the CPU: {'yes' if np.array_equal(gpu, ours) else 'NO'}")
            variants["cuda"] = lambda: nms(boxes, scores, labels_or_none, IOU_THRESHOLD, device="cuda")
            labels["cuda"] = "radedge nms on CUDA from host arrays (allocation, copies, sync included)"
        report(f"NMS, 10 000 boxes, {kind}", measure(variants, args.seconds, warmup=2, min_runs=8), labels, "radedge")

    geometry = resize_geometry(2500, 2048, PreprocessSpec(1024, 1024, "letterbox"))
    strides = [8, 16, 32]
    for dtype in ("float32", "float16"):
        levels = fcos_head(dtype=dtype, background=args.background)
        params = dict(score_threshold=0.05, iou_threshold=0.6, pre_nms_top_k=1000, max_detections=100)
        ours = decode_dense(levels, strides, geometry, threads=threads, **params)
        ref_boxes, ref_scores, ref_classes = numpy_decode(levels, strides, geometry)
        count = int(ours.valid[0])
        agree = count == len(ref_scores) and np.array_equal(ours.classes[0, :count], ref_classes) and np.allclose(
            ours.boxes[0, :count], ref_boxes, rtol=1e-5, atol=1e-3
        )
        cells = sum(level[0].size for level in levels)
        passing = sum(
            int((np.sqrt(1 / (1 + np.exp(-s.astype(np.float64))) / (1 + np.exp(-c.astype(np.float64)))) > 0.05).sum())
            for s, _, c in levels
        )
        print(f"\nDense decode, {dtype}, {cells} (cell, class) scores, {passing} above the threshold: {count} "
              f"detections; same as numpy + OpenCV: {'yes' if agree else 'NO'}")
        results = measure(
            {
                "radedge": lambda: decode_dense(levels, strides, geometry, threads=threads, **params),
                "radedge 1 thread": lambda: decode_dense(levels, strides, geometry, threads=1, **params),
                "numpy": lambda: numpy_decode(levels, strides, geometry),
            },
            args.seconds,
        )
        report(
            f"Dense decode, 3-level FCOS head for 1024 x 1024, 7 classes, {dtype}",
            results,
            {
                "radedge": f"radedge decode_dense ({threads} threads)",
                "radedge 1 thread": "radedge decode_dense (1 thread)",
                "numpy": "numpy + cv2.dnn.NMSBoxesBatched",
            },
            "radedge",
        )


if __name__ == "__main__":
    main()
