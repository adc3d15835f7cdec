// Bindings of the mask decode op: numpy arrays are checked here (dtype, rank, layout,
// writeability) and turned into the views of radedge/mask_decode.h; the op's own argument
// checks (check_mask_decode_args) and its NaN / infinity check then run in the backend,
// before anything is written.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mask_decode_args.h"
#include "radedge/errors.h"
#include "radedge/mask_decode.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
namespace {
[[noreturn]] void no_cuda() {
  throw CudaError(
      "mask_decode (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build "
      "time); mask_decode runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
}  // namespace

size_t mask_decode_cuda_workspace_bytes(int64_t, int64_t, int64_t, int64_t, int64_t) { no_cuda(); }
void mask_decode_cuda(const LogitsView&, int64_t, const MaskDecodeParams&, const MaskView&, const RunsView&,
                      LabelTally*, MaskDecodeCounters*, void*, size_t, CUstream_st*) {
  no_cuda();
}
MaskDecodeResult mask_decode_cuda_host(const LogitsView&, int64_t, const MaskDecodeParams&, const MaskView&,
                                       const RunsView&) {
  no_cuda();
}
#endif

namespace {

std::string describe(const py::array& array) {
  std::ostringstream text;
  text << std::string(py::str(array.dtype())) << " with shape (";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text << (i ? ", " : "") << array.shape(i);
  text << (array.ndim() == 1 ? ",)" : ")");
  return text.str();
}

bool is_dtype(const py::array& array, const char* name) { return array.dtype().equal(py::dtype(name)); }

LogitsView logits_view(const py::array& logits) {
  LogitsView view;
  if (logits.ndim() == 4 && is_dtype(logits, "float32")) {
    view.type = LogitType::kFloat32;
  } else if (logits.ndim() == 4 && is_dtype(logits, "float16")) {
    view.type = LogitType::kFloat16;
  } else {
    throw std::invalid_argument("logits must be float32 or float16 [N, C, h, w] in native byte order; got " +
                                describe(logits));
  }
  if (!(logits.flags() & py::array::c_style)) {
    throw std::invalid_argument("logits must be C-contiguous [N, C, h, w]; got a strided view of " +
                                describe(logits) + ". Pass numpy.ascontiguousarray(logits)");
  }
  view.data = logits.data();
  view.batch = logits.shape(0);
  view.channels = logits.shape(1);
  view.height = logits.shape(2);
  view.width = logits.shape(3);
  return view;
}

MaskView mask_view(py::array& mask) {
  if (mask.ndim() != 2 || !is_dtype(mask, "uint8")) {
    throw std::invalid_argument("mask must be uint8 [height, width]; got " + describe(mask));
  }
  if (!(mask.flags() & py::array::c_style)) {
    throw std::invalid_argument("mask must be C-contiguous; got a strided view of " + describe(mask) +
                                ". Allocate it with numpy.empty((height, width), numpy.uint8)");
  }
  if (!mask.writeable()) throw std::invalid_argument("mask is read-only; pass a writeable array");
  MaskView view;
  view.data = static_cast<uint8_t*>(mask.mutable_data());
  view.height = mask.shape(0);
  view.width = mask.shape(1);
  return view;
}

RunsView runs_view(const py::object& runs) {
  if (runs.is_none()) return RunsView{};
  if (!py::isinstance<py::array>(runs)) {
    throw std::invalid_argument("runs must be None or a uint32 [capacity, 2] numpy array; got " +
                                std::string(py::str(py::type::of(runs).attr("__name__"))));
  }
  py::array array = runs.cast<py::array>();
  if (array.ndim() != 2 || array.shape(1) != 2 || !is_dtype(array, "uint32")) {
    throw std::invalid_argument("runs must be uint32 [capacity, 2] (value, length pairs); got " + describe(array));
  }
  if (array.shape(0) < 1) {
    throw std::invalid_argument("runs must hold at least one run; pass runs=None for no run-length encoding");
  }
  if (!(array.flags() & py::array::c_style)) {
    throw std::invalid_argument("runs must be C-contiguous; got a strided view of " + describe(array));
  }
  if (!array.writeable()) throw std::invalid_argument("runs is read-only; pass a writeable array");
  RunsView view;
  view.data = static_cast<uint32_t*>(array.mutable_data());
  view.capacity = array.shape(0);
  return view;
}

py::dict result_dict(const MaskDecodeResult& result) {
  py::dict d;
  d["labels"] = binding::label_stats_list(result.labels);
  d["run_count"] = result.run_count;
  return d;
}

}  // namespace

void bind_mask_decode(py::module_& m) {
  m.def(
      "mask_decode_cpu",
      [](const py::array& logits, int64_t image, py::array mask, const std::string& activation,
         const std::vector<double>& thresholds, const py::object& geometry, double row_spacing_mm,
         double column_spacing_mm, const py::object& runs, int threads) {
        const LogitsView logits_in = logits_view(logits);
        const MaskView mask_out = mask_view(mask);
        const RunsView runs_out = runs_view(runs);
        const MaskDecodeParams params =
            binding::mask_params_from(activation, thresholds, geometry, row_spacing_mm, column_spacing_mm);
        MaskDecodeResult result;
        {
          py::gil_scoped_release release;
          result = mask_decode_cpu(logits_in, image, params, mask_out, runs_out, threads);
        }
        return result_dict(result);
      },
      py::arg("logits"), py::arg("image"), py::arg("mask"), py::kw_only(), py::arg("activation"),
      py::arg("thresholds"), py::arg("geometry"), py::arg("row_spacing_mm") = 0.0,
      py::arg("column_spacing_mm") = 0.0, py::arg("runs") = py::none(), py::arg("threads") = 0,
      (std::string("Decodes logits[image] (float32/float16 [N, C, h, w]) into mask (uint8 [height, width]) on CPU "
                   "threads (0: the default count). activation 'sigmoid' (thresholds: probabilities, 1 or C) or "
                   "'softmax' (thresholds: []). runs: None, or uint32 [capacity, 2] to receive the run-length "
                   "encoding. row_spacing_mm / column_spacing_mm: the source's pixel spacing, 0 when unknown. ") +
       binding::kGeometryDoc + " The mask's shape is the output size, spread over the source image." +
       " Returns {'labels': [{'pixel_count', 'bbox', 'centroid', 'area_mm2'}, ...], 'run_count'}.")
          .c_str());

  m.def(
      "mask_decode_cuda_host",
      [](const py::array& logits, int64_t image, py::array mask, const std::string& activation,
         const std::vector<double>& thresholds, const py::object& geometry, double row_spacing_mm,
         double column_spacing_mm, const py::object& runs) {
        const LogitsView logits_in = logits_view(logits);
        const MaskView mask_out = mask_view(mask);
        const RunsView runs_out = runs_view(runs);
        const MaskDecodeParams params =
            binding::mask_params_from(activation, thresholds, geometry, row_spacing_mm, column_spacing_mm);
        MaskDecodeResult result;
        {
          py::gil_scoped_release release;
          result = mask_decode_cuda_host(logits_in, image, params, mask_out, runs_out);
        }
        return result_dict(result);
      },
      py::arg("logits"), py::arg("image"), py::arg("mask"), py::kw_only(), py::arg("activation"),
      py::arg("thresholds"), py::arg("geometry"), py::arg("row_spacing_mm") = 0.0,
      py::arg("column_spacing_mm") = 0.0, py::arg("runs") = py::none(),
      "mask_decode_cpu's op run by the CUDA kernels on host arrays: copies logits[image] to the current CUDA "
      "device, runs, waits and copies the mask, runs and statistics back. Raises RuntimeError naming the CUDA "
      "error, or saying that the module was built without CUDA.");
}

}  // namespace radedge
