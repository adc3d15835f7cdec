// Bindings of the histogram op (radedge/histogram.h): arrays checked here, the op's own
// checks (check_histogram_args) in the backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "array_views.h"
#include "histogram_args.h"
#include "radedge/errors.h"
#include "radedge/histogram.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
void histogram_cuda(const PixelsView&, const HistogramView&, const HistogramParams&, CUstream_st*) {
  throw CudaError(
      "histogram (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build time); "
      "histogram runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
void histogram_cuda_host(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params) {
  histogram_cuda(pixels, counts, params, nullptr);
}
#endif

namespace {

using binding::Padding;
using binding::Region;

HistogramView counts_view(py::array& counts) {
  if (counts.ndim() != 1 || !binding::is<int64_t>(counts)) {
    throw std::invalid_argument("counts must be an int64 [bins] array; got " + binding::describe(counts) +
                                ". Allocate it with numpy.zeros(bins, numpy.int64)");
  }
  if (counts.shape(0) > 1 && counts.strides(0) != static_cast<py::ssize_t>(sizeof(int64_t))) {
    throw std::invalid_argument("counts must be contiguous; got a stride of " + std::to_string(counts.strides(0)) +
                                " bytes");
  }
  if (!counts.writeable()) throw std::invalid_argument("counts is read-only; pass a writeable array");
  return HistogramView{static_cast<int64_t*>(counts.mutable_data()), counts.shape(0)};
}

}  // namespace

void bind_histogram(py::module_& m) {
  m.def(
      "histogram_cpu",
      [](const py::array& pixels, py::array counts, int64_t first_value, const Region& region,
         const Padding& padding, int threads) {
        const PixelsView pixels_in = binding::pixels_view(pixels, /*allow_float=*/false);
        const HistogramView counts_out = counts_view(counts);
        const HistogramParams params = binding::histogram_params_from(first_value, region, padding);
        py::gil_scoped_release release;
        histogram_cpu(pixels_in, counts_out, params, threads);
      },
      py::arg("pixels"), py::arg("counts"), py::arg("first_value"), py::kw_only(), py::arg("region") = py::none(),
      py::arg("padding") = py::none(), py::arg("threads") = 0,
      "Count pixels (uint8/uint16/int16 [rows, columns]) per stored value into counts (int64 [bins]): bin b holds "
      "stored value first_value + b, values outside the range count in the end bins. region: (x, y, width, "
      "height) to count, None for the whole image; padding: (low, high) stored values not counted, or None. "
      "On CPU threads (0: the default count).");

  m.def(
      "histogram_cuda_host",
      [](const py::array& pixels, py::array counts, int64_t first_value, const Region& region,
         const Padding& padding) {
        const PixelsView pixels_in = binding::pixels_view(pixels, /*allow_float=*/false);
        const HistogramView counts_out = counts_view(counts);
        const HistogramParams params = binding::histogram_params_from(first_value, region, padding);
        py::gil_scoped_release release;
        histogram_cuda_host(pixels_in, counts_out, params);
      },
      py::arg("pixels"), py::arg("counts"), py::arg("first_value"), py::kw_only(), py::arg("region") = py::none(),
      py::arg("padding") = py::none(),
      "histogram_cpu's op run by the CUDA kernel on host arrays: copies pixels to the current CUDA device, "
      "counts there, waits and copies the counts back.");
}

}  // namespace radedge
