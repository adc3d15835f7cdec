// Binding of the device-pointer histogram entry (histogram_cuda in radedge/histogram.h) for CUDA
// arrays from any exporter (radedge.cuda.DeviceArray, torch, CuPy, pycuda, DLPack capsules),
// zero-copy, enqueued on the caller's stream. The host-array bindings are in histogram_binding.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "device_array.h"
#include "histogram_args.h"
#include "radedge/cuda_memory.h"
#include "radedge/histogram.h"

namespace py = pybind11;

namespace radedge {
namespace {

constexpr const char* kOp = "histogram";

const DeviceViewRequirements kPixels{false, {kUint8, kUint16, kInt16}, 2, Layout::kRowsPadded,
                                     "uint8, uint16 or int16 [rows, columns] stored values (rows may be padded, "
                                     "columns contiguous)"};
const DeviceViewRequirements kCounts{true, {kInt64}, 1, Layout::kCContiguous, "int64 [bins]"};

PixelsView pixels_view(const DeviceView& view) {
  PixelsView pixels;
  pixels.data = view.data;
  pixels.type = cuda::same_dtype(view.dtype, kUint8)    ? PixelType::kUint8
                : cuda::same_dtype(view.dtype, kUint16) ? PixelType::kUint16
                                                        : PixelType::kInt16;
  pixels.rows = view.shape[0];
  pixels.columns = view.shape[1];
  pixels.row_stride = view.element_stride(0);
  return pixels;
}

}  // namespace

void bind_histogram_cuda(py::module_& m) {
  m.def(
      "histogram_cuda",
      [](py::handle pixels, py::handle counts, int64_t first_value, const binding::Region& region,
         const binding::Padding& padding, py::handle stream) {
        const HistogramParams params = binding::histogram_params_from(first_value, region, padding);
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, kOp);
        // Every argument is checked from its metadata before CUDA is touched.
        DeviceView pixels_in = as_device_view(pixels, "pixels", kPixels, *on);
        DeviceView counts_out = as_device_view(counts, "counts", kCounts, *on);
        const PixelsView pixels_arg = pixels_view(pixels_in);
        const HistogramView counts_arg{static_cast<int64_t*>(counts_out.data), counts_out.shape[0]};
        check_histogram_args(pixels_arg, counts_arg, params);
        // The kernel adds to the counts with 64-bit atomics.
        require_aligned(counts_out, sizeof(int64_t));
        refuse_overlaps({&counts_out}, {&pixels_in}, kOp);

        require_cuda(kOp);
        const int device = prepare_device_views({&pixels_in, &counts_out}, *on, kOp);
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(device, kOp);
        histogram_cuda(pixels_arg, counts_arg, params, on->handle());
      },
      py::arg("pixels"), py::arg("counts"), py::arg("first_value"), py::kw_only(), py::arg("region") = py::none(),
      py::arg("padding") = py::none(), py::arg("stream") = py::none(),
      "histogram_cpu's op on CUDA arrays, zero-copy: counts pixels (uint8/uint16/int16 [rows, columns], rows may "
      "be padded) per stored value into counts (int64 [bins], C-contiguous, 8-byte aligned): bin b holds stored "
      "value first_value + b, values outside the range count in the end bins. region: (x, y, width, height) to "
      "count, None for the whole image; padding: (low, high) stored values not counted, or None. Both arrays are "
      "any exporter's __cuda_array_interface__ / DLPack arrays on the stream's device. Enqueued on `stream` (a "
      "radedge Stream; None: the legacy default stream) and not waited for; allocates nothing, so it can be "
      "captured in a CUDA graph.");
}

}  // namespace radedge
