"""GPU benchmark: the zero-copy CUDA ops against the memory-bandwidth floor, and one CUDA graph
of the whole post-engine chain.

    .venv/bin/python examples/bench_gpu.py [--repeat N] [--channels C] [--labels K] [--boxes M]

Everything runs on the GPU, on radedge's own device arrays, on one stream:

1. copy       a device-to-device copy of 256 MiB, measured in this run: the bandwidth that
              the floors below are computed from (bytes read + bytes written per second);
2. preprocess 3000 x 3000 uint16 stored values -> lookup table -> letterbox -> 512 x 512
              float16 model input (``radedge.ops.preprocess.preprocess_into`` on CUDA arrays);
3. mask       512 x 512 float16 sigmoid logits -> 3000 x 3000 uint8 mask with per-label
              statistics (``radedge.ops.mask_decode.decode_mask`` on CUDA arrays).

Each op's floor is the bytes it must move (its input read once, its output written once)
divided by the copy bandwidth; the spec's goal is an op time within 2x of it. Op times are
taken with CUDA events around replays of a CUDA graph holding many calls, so the host's
launch cost is not in them (the eager time, one Python call per op, is printed beside). The
calls rotate over input (preprocess) or output (mask) buffers larger together than the GPU's
L2 cache, so each call moves its bytes from and to device memory, as a real stream of images
does.

4. nms        class-aware NMS over 10 000 boxes in 7 classes (``radedge._kernels.nms_cuda``),
              replayed from a graph (goal: under 1 ms);
5. graph      preprocess + mask decode + NMS captured once into one CUDA graph and replayed:
              the host cost of a launch (goal < 50 us) and the GPU time of a replay.

The results are checked against radedge's CPU ops before anything is timed. Without a usable
GPU the script says why and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from radedge import cuda
from radedge._native import kernels
from radedge.ops.mask_decode import decode_mask, mask_decode_cuda_workspace_bytes
from radedge.ops.preprocess import PreprocessSpec, preprocess, preprocess_cuda_workspace_bytes, preprocess_into

SOURCE = 3000
INPUT = 512
# Bytes of buffers a rotation spans: well above the L2 cache of current GPUs (50 MiB on H100).
ROTATION_BYTES = 160 << 20
COPY_BYTES = 256 << 20
THRESHOLD = 0.5


def version(value: int) -> str:
    return f"{value // 1000}.{value % 1000 // 10}"


def stored_pixels(rng: np.random.Generator) -> np.ndarray:
    """A 12-bit radiograph-like uint16 image: a smooth gradient with noise."""
    y, x = np.mgrid[0:SOURCE, 0:SOURCE].astype(np.float32)
    base = 600 + 2800 * np.exp(-(((x - 1400) / 900) ** 2 + ((y - 1600) / 1100) ** 2))
    return np.clip(base + rng.normal(0, 40, base.shape), 0, 4095).astype(np.uint16)


def lesion_logits(rng: np.random.Generator, labels: int) -> np.ndarray:
    """float16 [1, labels, 512, 512]: a background near -6 and a few blobs reaching +6 per label."""
    y, x = np.mgrid[0:INPUT, 0:INPUT].astype(np.float32)
    logits = np.empty((1, labels, INPUT, INPUT), np.float16)
    for k in range(labels):
        plane = np.full((INPUT, INPUT), -6.0, np.float32)
        for _ in range(2):
            cx, cy = rng.uniform(60, INPUT - 60, 2)
            rx, ry = rng.uniform(20, 80, 2)
            plane += 12.0 * np.exp(-0.7 * (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2))
        logits[0, k] = plane + rng.normal(0, 0.4, plane.shape)
    return logits


def gpu_ms(stream: cuda.Stream, run, repeat: int) -> float:
    """Milliseconds of GPU time per call of `run`, from CUDA events around `repeat` calls."""
    run()
    start = stream.record()
    for _ in range(repeat):
        run()
    end = stream.record()
    return start.elapsed_ms(end) / repeat


def graph_of(stream: cuda.Stream, calls) -> cuda.Graph:
    """One CUDA graph that runs every call of `calls` in order."""
    graph = cuda.Graph()
    with graph.capture(stream):
        for call in calls:
            call()
    return graph


def replayed_ms(stream: cuda.Stream, make_call, rotation: int, repeat: int) -> float:
    """GPU milliseconds per call: `make_call(i)` for i = 0, 1, ... (the call on buffer i % rotation)
    captured into one graph, replayed until about `repeat` calls have run."""
    per_graph = max(rotation, min(repeat, 4 * rotation))
    graph = graph_of(stream, [make_call(i % rotation) for i in range(per_graph)])
    launches = max(3, repeat // per_graph)
    return gpu_ms(stream, lambda: graph.launch(stream), launches) / per_graph


def eager_ms(stream: cuda.Stream, run, repeat: int) -> float:
    """Wall milliseconds per call of `run` made one after another from Python, up to the last one's end."""
    run()
    stream.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    stream.synchronize()
    return (time.perf_counter() - start) * 1e3 / repeat


def copy_bandwidth(stream: cuda.Stream, repeat: int) -> float:
    """Bytes per second a device-to-device copy reads plus writes."""
    source = cuda.DeviceArray.empty(COPY_BYTES, "uint8", stream=stream)
    target = cuda.DeviceArray.empty(COPY_BYTES, "uint8", stream=stream)
    source.copy_from(target, stream=stream)  # touch both once
    ms = gpu_ms(stream, lambda: target.copy_from(source, stream=stream), repeat)
    return 2 * COPY_BYTES / (ms * 1e-3)


def report(name: str, moved_bytes: int, bandwidth: float, graph_ms: float, eager: float) -> float:
    floor_ms = moved_bytes / bandwidth * 1e3
    ratio = graph_ms / floor_ms
    print(f"{name:<11} {moved_bytes / 1e6:8.2f} MB moved   floor {floor_ms * 1e3:8.1f} us   "
          f"GPU {graph_ms * 1e3:8.1f} us   ratio {ratio:5.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'})   "
          f"eager {eager * 1e3:8.1f} us/call")
    return ratio


def nms_arguments(rng: np.random.Generator, count: int, classes: int, stream: cuda.Stream) -> dict:
    """Candidate boxes of a detection head in model-input pixels: float32 [M, 4] x1 y1 x2 y2,
    float32 [M] scores, int32 [M] classes, and the int32 outputs."""
    corner = rng.uniform(0, INPUT - 40, (count, 2))
    size = rng.uniform(8, 120, (count, 2))
    boxes = np.concatenate([corner, np.minimum(corner + size, INPUT)], axis=1).astype(np.float32)
    return dict(
        boxes=cuda.DeviceArray.from_numpy(boxes, stream=stream),
        scores=cuda.DeviceArray.from_numpy(rng.random(count).astype(np.float32), stream=stream),
        classes=cuda.DeviceArray.from_numpy(rng.integers(0, classes, count).astype(np.int32), stream=stream),
    )


# --- NMS ---------------------------------------------------------------------------------------


def nms_call(inputs: dict, stream: cuda.Stream, max_detections: int):
    """A no-argument call of the detection op's zero-copy NMS (radedge._kernels.nms_cuda) on
    `inputs`, with a caller workspace so it can be captured in a graph, and a description."""
    native = kernels()
    count = inputs["boxes"].shape[0]
    keep = cuda.DeviceArray.empty(max_detections, "int32", stream=stream)
    keep_count = cuda.DeviceArray.empty(1, "int32", stream=stream)
    workspace = cuda.DeviceArray.empty(native.nms_cuda_workspace_bytes(count, max_detections), "uint8", stream=stream)

    def call():
        native.nms_cuda(inputs["boxes"], inputs["scores"], inputs["classes"], out_keep=keep, out_count=keep_count,
                        iou_threshold=0.5, max_detections=max_detections, workspace=workspace, stream=stream)

    call()
    kept = int(keep_count.to_numpy(stream)[0])
    if not 0 < kept <= max_detections:
        raise RuntimeError(f"nms_cuda kept {kept} of {count} boxes, outside 1 .. {max_detections}")
    classes = len(np.unique(inputs["classes"].to_numpy(stream)))
    return call, f"NMS of {count} boxes in {classes} classes, {kept} kept (max {max_detections})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200, help="calls timed per measurement")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3), help="channels of the model input")
    parser.add_argument("--labels", type=int, default=1, help="sigmoid labels of the segmentation head")
    parser.add_argument("--boxes", type=int, default=1000, help="candidate boxes for NMS in the graph")
    args = parser.parse_args()

    if not cuda.is_available():
        _, why = kernels().cuda_device_count()
        print(f"no usable CUDA device: {why}. This benchmark measures radedge's CUDA ops and needs an NVIDIA GPU "
              "and radedge built with the CUDA toolkit; nothing was measured.")
        return 0

    device = cuda.device_properties()
    stream = cuda.Stream()
    rng = np.random.default_rng(20261122)
    print(f"GPU      {device['name']} (compute capability {'.'.join(map(str, device['compute_capability']))}, "
          f"{device['multiprocessors']} SMs, {device['total_memory_bytes'] / 2**30:.0f} GiB)")
    print(f"CUDA     driver {version(device['driver_version'])}, runtime {version(device['runtime_version'])}; "
          f"radedge._kernels {kernels().build_info()['version']} for {kernels().build_info()['cuda_architectures']}")
    if device["memory_clock_khz"] and device["memory_bus_width_bits"]:
        peak = 2 * device["memory_clock_khz"] * 1e3 * device["memory_bus_width_bits"] / 8
        print(f"memory   {device['memory_bus_width_bits']}-bit bus, peak {peak / 1e9:.0f} GB/s (from the clocks)")

    # A test build whose CUDA ops run on the CPU emulator: check the results, time nothing.
    emulated = kernels().build_info().get("cuda_emulation", False)
    if not emulated:
        bandwidth = copy_bandwidth(stream, max(10, args.repeat // 10))
        print(f"copy     device-to-device, {COPY_BYTES >> 20} MiB: {bandwidth / 1e9:.0f} GB/s read + written "
              "(the floors below use this)")
    print()

    # (a) preprocess: 3000 x 3000 uint16 -> 512 x 512 float16.
    spec = PreprocessSpec(INPUT, INPUT, "letterbox", channels=args.channels, dtype="float16")
    pixels = stored_pixels(rng)
    table = np.linspace(0.0, 1.0, 4096, dtype=np.float32)
    preprocess_rotation = max(2, -(-ROTATION_BYTES // pixels.nbytes))
    device_pixels = [cuda.DeviceArray.from_numpy(pixels, stream=stream) for _ in range(preprocess_rotation)]
    device_table = cuda.DeviceArray.from_numpy(table, stream=stream)
    model_input = cuda.DeviceArray.empty((1, *spec.shape), "float16", stream=stream)
    workspace = cuda.DeviceArray.empty(preprocess_cuda_workspace_bytes(SOURCE, SOURCE, spec), "uint8", stream=stream)

    def preprocess_on(index: int):
        return lambda: preprocess_into(device_pixels[index], device_table, 0, model_input, 0, spec, device="cuda",
                                       stream=stream, workspace=workspace)

    geometry = preprocess_into(device_pixels[0], device_table, 0, model_input, 0, spec, device="cuda", stream=stream,
                               workspace=workspace)
    expected, _ = preprocess(pixels, table, 0, spec)
    np.testing.assert_allclose(model_input.to_numpy(stream).astype(np.float32), expected.astype(np.float32),
                               rtol=2.0**-10, atol=1e-5)
    preprocess_bytes = pixels.nbytes + table.nbytes + model_input.nbytes

    # (b) mask decode: 512 x 512 float16 logits -> 3000 x 3000 uint8 mask.
    logits = lesion_logits(rng, args.labels)
    device_logits = cuda.DeviceArray.from_numpy(logits, stream=stream)
    mask_rotation = max(2, -(-ROTATION_BYTES // (SOURCE * SOURCE)))
    masks = [cuda.DeviceArray.empty((SOURCE, SOURCE), "uint8", stream=stream) for _ in range(mask_rotation)]
    tallies = cuda.DeviceArray.empty((args.labels, 7), "uint64", stream=stream)
    counters = cuda.DeviceArray.empty(2, "uint64", stream=stream)
    mask_workspace = cuda.DeviceArray.empty(
        mask_decode_cuda_workspace_bytes((INPUT, INPUT), (SOURCE, SOURCE)), "uint8", stream=stream
    )
    decode_options = dict(input_size=(INPUT, INPUT), activation="sigmoid", thresholds=THRESHOLD,
                          spacing_mm=(0.143, 0.143), tallies=tallies, counters=counters, workspace=mask_workspace,
                          device="cuda", stream=stream)

    def decode_into(index: int):
        return lambda: decode_mask(device_logits, geometry, out=masks[index], **decode_options)

    decoded = decode_into(0)().to_host()
    reference = decode_mask(logits, geometry, input_size=(INPUT, INPUT), activation="sigmoid", thresholds=THRESHOLD,
                            spacing_mm=(0.143, 0.143))
    np.testing.assert_array_equal(decoded.mask, reference.mask)
    assert decoded.labels == reference.labels
    mask_bytes = logits.nbytes + SOURCE * SOURCE
    print("results match radedge's CPU ops (preprocess within float16 rounding, the mask exactly); "
          f"{sum(label.pixel_count for label in reference.labels)} lesion pixels")
    print()
    if emulated:
        print("This radedge._kernels runs its CUDA ops on the CPU emulator (a test build): the results were "
              "checked, nothing was timed; an emulator's timings say nothing about a GPU.")
        return 0

    ratios = [
        report("preprocess", preprocess_bytes, bandwidth,
               replayed_ms(stream, preprocess_on, preprocess_rotation, args.repeat),
               eager_ms(stream, preprocess_on(0), args.repeat)),
        report("mask", mask_bytes, bandwidth, replayed_ms(stream, decode_into, mask_rotation, args.repeat),
               eager_ms(stream, decode_into(0), args.repeat)),
    ]
    print(f"({args.channels}-channel input, {args.labels}-label head; each op's floor: its input read once and "
          "its output written once at the copy bandwidth)")
    print()

    # (c) NMS over 10 000 boxes on its own (goal: under 1 ms), replayed from a graph.
    nms_large, nms_large_note = nms_call(nms_arguments(rng, 10_000, 7, stream), stream, 100)
    nms_graph = graph_of(stream, [nms_large])
    nms_ms = gpu_ms(stream, lambda: nms_graph.launch(stream), max(20, args.repeat))
    print(f"nms      {nms_large_note}: {nms_ms * 1e3:8.1f} us per call (goal < 1000 us: "
          f"{'met' if nms_ms < 1.0 else 'NOT met'})")
    print()

    # (d) the graph of the chain after the engine, launched as one unit.
    nms, nms_note = nms_call(nms_arguments(rng, args.boxes, 7, stream), stream, 100)
    chain = [preprocess_on(0), decode_into(0), nms]
    graph = graph_of(stream, chain)
    graph.launch(stream)
    stream.synchronize()
    launches = max(20, args.repeat)
    # Each launch timed alone, after the previous replay has run, so a full launch queue never
    # makes the host wait inside the measurement.
    host_s = 0.0
    for _ in range(launches):
        start = time.perf_counter()
        graph.launch(stream)
        host_s += time.perf_counter() - start
        stream.synchronize()
    host_us = host_s * 1e6 / launches
    replay_ms = gpu_ms(stream, lambda: graph.launch(stream), launches)
    eager_chain_ms = eager_ms(stream, lambda: [call() for call in chain], max(10, args.repeat // 4))
    print(f"graph    preprocess + mask decode + NMS: {nms_note}")
    print(f"graph    host launch {host_us:6.1f} us (goal < 50 us: {'met' if host_us < 50 else 'NOT met'})   "
          f"GPU per replay {replay_ms * 1e3:8.1f} us   eager chain {eager_chain_ms * 1e3:8.1f} us")
    print()
    print("| op | bytes moved | floor | GPU time | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, moved, ratio in (("preprocess 3000x3000 uint16 -> 512x512 fp16", preprocess_bytes, ratios[0]),
                               ("mask decode 512x512 fp16 -> 3000x3000 uint8", mask_bytes, ratios[1])):
        floor_us = moved / bandwidth * 1e6
        print(f"| {name} | {moved / 1e6:.1f} MB | {floor_us:.1f} us | {floor_us * ratio:.1f} us | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
