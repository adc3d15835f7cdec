// Bindings of the heatmap peaks op: the numpy heatmaps are checked here (dtype, rank,
// layout) and the outputs allocated as numpy arrays that the op writes in place; the op's
// own checks (check_heatmap_peaks_args, check_heatmaps_finite) then run in the backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "head_grid_binding.h"
#include "radedge/errors.h"
#include "radedge/heatmap_peaks.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
namespace {
[[noreturn]] void no_cuda() {
  throw CudaError(
      "heatmap_peaks (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build "
      "time); heatmap_peaks runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
}  // namespace

size_t heatmap_peaks_cuda_workspace_bytes(const HeatmapsView&, const HeatmapPeaksParams&) { no_cuda(); }
void heatmap_peaks_cuda(const HeatmapsView&, const PeaksView&, const HeatmapPeaksParams&, void*, size_t,
                        CUstream_st*) {
  no_cuda();
}
void heatmap_peaks_cuda_host(const HeatmapsView&, const PeaksView&, const HeatmapPeaksParams&) { no_cuda(); }
#endif

namespace {

HeatmapsView heatmaps_view(const py::array& heatmaps) {
  constexpr const char* kShape = "[N, C, h, w]";
  if (heatmaps.ndim() != 4) {
    throw std::invalid_argument("heatmaps must be float32 or float16 [N, C, h, w]; got " +
                                binding::describe(heatmaps));
  }
  HeatmapsView view;
  view.type = binding::map_type(heatmaps, "heatmaps", kShape);
  binding::require_c_contiguous(heatmaps, "heatmaps", kShape);
  view.data = heatmaps.data();
  view.batch = heatmaps.shape(0);
  view.channels = heatmaps.shape(1);
  view.height = heatmaps.shape(2);
  view.width = heatmaps.shape(3);
  return view;
}

HeatmapPeaksParams params_from(const py::dict& placement, const std::string& mode, int64_t k,
                               const std::vector<double>& threshold, int64_t radius, const std::string& activation,
                               bool refine) {
  HeatmapPeaksParams params;
  if (mode == "peaks") {
    params.mode = PeakMode::kLocalMaxima;
  } else if (mode == "argmax") {
    params.mode = PeakMode::kArgmax;
  } else {
    throw std::invalid_argument("mode must be 'peaks' or 'argmax'; got '" + mode + "'");
  }
  if (activation == "none") {
    params.activation = PeakActivation::kNone;
  } else if (activation == "sigmoid") {
    params.activation = PeakActivation::kSigmoid;
  } else {
    throw std::invalid_argument("activation must be 'none' or 'sigmoid'; got '" + activation + "'");
  }
  params.max_peaks = k;
  params.threshold = threshold;
  params.radius = radius;
  params.refine = refine;
  params.placement = binding::placement_from(placement);
  return params;
}

// The outputs, allocated here so that the op writes straight into numpy memory.
struct Outputs {
  py::array_t<float> x, y, score;
  py::array_t<int32_t> valid;
  PeaksView view;
};

Outputs make_outputs(const HeatmapsView& heatmaps, int64_t k) {
  // Refused sizes would make the allocation itself misbehave; the op's check says why.
  const int64_t batch = heatmaps.batch > 0 ? heatmaps.batch : 0, channels = heatmaps.channels > 0 ? heatmaps.channels : 0;
  const int64_t peaks = k > 0 && k <= kMaxPeaks ? k : 0;
  Outputs out{py::array_t<float>({batch, channels, peaks}), py::array_t<float>({batch, channels, peaks}),
              py::array_t<float>({batch, channels, peaks}), py::array_t<int32_t>({batch, channels}), PeaksView{}};
  out.view.x = out.x.mutable_data();
  out.view.y = out.y.mutable_data();
  out.view.score = out.score.mutable_data();
  out.view.valid = out.valid.mutable_data();
  out.view.batch = batch;
  out.view.channels = channels;
  out.view.max_peaks = k;
  return out;
}

}  // namespace

void bind_heatmap_peaks(py::module_& m) {
  m.def(
      "heatmap_peaks_cpu",
      [](const py::array& heatmaps, const py::dict& placement, const std::string& mode, int64_t k,
         const std::vector<double>& threshold, int64_t radius, const std::string& activation, bool refine,
         int threads) {
        const HeatmapsView view = heatmaps_view(heatmaps);
        const HeatmapPeaksParams params = params_from(placement, mode, k, threshold, radius, activation, refine);
        Outputs out = make_outputs(view, k);
        {
          py::gil_scoped_release release;
          heatmap_peaks_cpu(view, out.view, params, threads);
        }
        return py::make_tuple(out.x, out.y, out.score, out.valid);
      },
      py::arg("heatmaps"), py::kw_only(), py::arg("placement"), py::arg("mode"), py::arg("k"), py::arg("threshold"),
      py::arg("radius"), py::arg("activation"), py::arg("refine"), py::arg("threads") = 0,
      "Peaks of heatmaps (float32/float16 [N, C, h, w], C-contiguous) in source pixels: returns (x, y, score) "
      "float32 [N, C, k] and valid int32 [N, C]; entries past valid are NaN. mode 'peaks' (local maxima >= "
      "threshold, one value or one per channel, in score units) or 'argmax' (k = 1, no threshold). placement: "
      "dict of input_height, input_width, content_height, content_width, offset_y, offset_x, scale_y, scale_x, "
      "crop_y, crop_x. threads: CPU threads (0: the default count).");

  m.def(
      "heatmap_peaks_cuda_host",
      [](const py::array& heatmaps, const py::dict& placement, const std::string& mode, int64_t k,
         const std::vector<double>& threshold, int64_t radius, const std::string& activation, bool refine) {
        const HeatmapsView view = heatmaps_view(heatmaps);
        const HeatmapPeaksParams params = params_from(placement, mode, k, threshold, radius, activation, refine);
        Outputs out = make_outputs(view, k);
        {
          py::gil_scoped_release release;
          heatmap_peaks_cuda_host(view, out.view, params);
        }
        return py::make_tuple(out.x, out.y, out.score, out.valid);
      },
      py::arg("heatmaps"), py::kw_only(), py::arg("placement"), py::arg("mode"), py::arg("k"), py::arg("threshold"),
      py::arg("radius"), py::arg("activation"), py::arg("refine"),
      "heatmap_peaks_cpu's op run by the CUDA kernels on host arrays: copies the heatmaps to the current CUDA "
      "device, runs, waits and copies the peaks back. Raises RuntimeError naming the CUDA error, or saying that "
      "the module was built without CUDA.");
}

}  // namespace radedge
