"""Zero-copy interop: a torch (or CuPy) CUDA tensor in, radedge preprocess on the same stream,
the result used by torch (or CuPy) without a copy.

    .venv/bin/python examples/zero_copy_interop.py [--framework torch|cupy] [image.dcm]

1. The framework you already run uploads the stored pixels and radedge's lookup table once.
2. radedge.ops.preprocess.preprocess_into reads those tensors and writes the model input tensor in
   place, on the framework's current stream: nothing is copied and nothing waits.
3. The framework reads the result on that same stream, so it needs no synchronisation either;
   the script checks that the tensor kept its address and that it matches radedge's CPU op.
4. The other direction: a radedge.cuda.DeviceArray goes to the framework through DLPack
   (torch.from_dlpack / cupy.from_dlpack), again sharing the memory.

Without a usable GPU (or without torch or CuPy built for CUDA) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

import radedge
from radedge import cuda
from radedge._native import kernels
from radedge.ops.preprocess import PreprocessSpec, preprocess, preprocess_into

IMAGE = Path(__file__).resolve().parent / "radiographs" / "femur_malignant.dcm"
# An ImageNet-style 3-channel float16 input, what a TensorRT FP16 engine of a 2D backbone takes.
SPEC = PreprocessSpec(
    512, 512, "letterbox", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channels=3, dtype="float16"
)


def torch_with_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def cupy_with_cuda() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def stored_values(image: radedge.Image) -> np.ndarray:
    """The stored pixels as int16 when they fit (12- to 15-bit detectors): torch's uint16 support
    varies across versions, int16 works everywhere and reads the same values."""
    pixels = image.pixels
    if pixels.dtype == np.uint16 and int(pixels.max()) <= np.iinfo(np.int16).max:
        return pixels.astype(np.int16)
    return pixels


def run_torch(pixels: np.ndarray, table: np.ndarray, first: int) -> np.ndarray:
    import torch

    print(f"GPU: {torch.cuda.get_device_name()} (torch {torch.__version__})")
    stream = torch.cuda.current_stream()
    device_pixels = torch.from_numpy(pixels).to("cuda")
    device_table = torch.from_numpy(table).to("cuda")
    batch = torch.empty((1, *SPEC.shape), dtype=torch.float16, device="cuda")
    address = batch.data_ptr()

    geometry = preprocess_into(device_pixels, device_table, first, batch, 0, SPEC, device="cuda", stream=stream)
    brightness = batch.float().mean()  # torch enqueues this after radedge's kernel, on the same stream
    print(f"torch tensor in -> radedge preprocess -> torch tensor out: same memory: {batch.data_ptr() == address} "
          f"({address:#x}); content {geometry.content_height} x {geometry.content_width} at "
          f"({geometry.offset_y}, {geometry.offset_x}); mean {brightness.item():.4f}")

    owned = cuda.DeviceArray.empty((1, *SPEC.shape), "float16")
    preprocess_into(device_pixels, device_table, first, owned, 0, SPEC, device="cuda", stream=stream)
    shared = torch.from_dlpack(owned)  # waits for radedge's stream on torch's current stream
    print(f"radedge DeviceArray -> torch.from_dlpack: same memory: {shared.data_ptr() == owned.ptr}; "
          f"equal to the first result: {bool(torch.equal(shared, batch))}")
    return batch.float().cpu().numpy()


def run_cupy(pixels: np.ndarray, table: np.ndarray, first: int) -> np.ndarray:
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    print(f"GPU: {properties['name'].decode()} (CuPy {cupy.__version__})")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        device_pixels = cupy.asarray(pixels)
        device_table = cupy.asarray(table)
        batch = cupy.empty((1, *SPEC.shape), dtype=cupy.float16)
        address = batch.data.ptr
        geometry = preprocess_into(device_pixels, device_table, first, batch, 0, SPEC, device="cuda", stream=stream)
        brightness = batch.astype(cupy.float32).mean()
        print(f"CuPy array in -> radedge preprocess -> CuPy array out: same memory: {batch.data.ptr == address} "
              f"({address:#x}); content {geometry.content_height} x {geometry.content_width}; "
              f"mean {float(brightness):.4f}")

        owned = cuda.DeviceArray.empty((1, *SPEC.shape), "float16")
        preprocess_into(device_pixels, device_table, first, owned, 0, SPEC, device="cuda", stream=stream)
        shared = cupy.from_dlpack(owned)
        print(f"radedge DeviceArray -> cupy.from_dlpack: same memory: {shared.data.ptr == owned.ptr}; "
              f"equal to the first result: {bool((shared == batch).all())}")
        return cupy.asnumpy(batch).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=IMAGE, help="a DICOM radiograph")
    parser.add_argument("--framework", choices=("torch", "cupy"), help="default: torch if it has CUDA, else CuPy")
    arguments = parser.parse_args()

    if not cuda.is_available():
        _, why = kernels().cuda_device_count()
        print(f"radedge.cuda: no usable CUDA device here ({why}).")
        print("This example hands GPU memory between torch or CuPy and radedge, so it needs a GPU; radedge's "
              "CPU ops work without one (radedge.ops.preprocess.preprocess_into(..., device='cpu')).")
        return 0
    available = {"torch": torch_with_cuda(), "cupy": cupy_with_cuda()}
    framework = arguments.framework or next((name for name, ok in available.items() if ok), None)
    if framework is None or not available[framework]:
        wanted = framework or "torch or CuPy"
        print(f"radedge.cuda sees a GPU, but {wanted} is not installed with CUDA support; install one of them "
              "(pip install torch, or pip install cupy-cuda12x / cupy-cuda13x) to run this example.")
        return 0

    image = radedge.read_image(arguments.image)
    lut = radedge.build_lut(image)
    pixels = stored_values(image)
    table = np.array(lut.table)  # a writable copy: torch.from_numpy wants writable memory
    print(f"{arguments.image.name}: {pixels.dtype} {pixels.shape} stored values, LUT of {table.size} entries "
          f"from stored value {lut.first_stored_value}")

    result = (run_torch if framework == "torch" else run_cupy)(pixels, table, lut.first_stored_value)

    expected, _ = preprocess(pixels, table, lut.first_stored_value, SPEC, device="cpu")
    difference = float(np.abs(result - expected.astype(np.float32)).max())
    print(f"largest difference from radedge's CPU op: {difference:.2e} (float16 rounding of values up to "
          f"{float(np.abs(expected).max()):.1f})")
    return 0 if difference <= 2.0**-10 * float(np.abs(expected).max()) + 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
