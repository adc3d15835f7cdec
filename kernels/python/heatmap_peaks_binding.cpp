// Bindings of the heatmap peaks op. On numpy arrays (heatmap_peaks_cpu, heatmap_peaks_cuda_host):
// the heatmaps are checked here (dtype, rank, layout) and the outputs allocated as numpy arrays
// that the op writes in place; the op's own checks (check_heatmap_peaks_args,
// check_heatmaps_finite) then run in the backend. On CUDA arrays (heatmap_peaks_cuda): the
// device-pointer entry of radedge/heatmap_peaks.h, zero-copy into the caller's outputs, following
// the steps of device_array.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"
#include "device_checks.h"
#include "geometry_args.h"
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

// Everything but the geometry.
HeatmapPeaksParams options_from(const std::string& mode, int64_t k, const std::vector<double>& threshold,
                                int64_t radius, const std::string& activation, bool refine) {
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
  return params;
}

HeatmapPeaksParams params_from(const py::object& geometry, const std::string& mode, int64_t k,
                               const std::vector<double>& threshold, int64_t radius, const std::string& activation,
                               bool refine) {
  HeatmapPeaksParams params = options_from(mode, k, threshold, radius, activation, refine);
  params.geometry = binding::geometry_from(geometry);
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

// One enqueue of the CUDA op: the whole batch for one geometry, or one image of it for one
// geometry per image (the op takes one geometry per call).
struct PeaksCall {
  HeatmapsView heatmaps;
  PeaksView peaks;
  HeatmapPeaksParams params;
};

// Checks the batch as one call (shapes, k, thresholds), then splits it by geometry and checks
// each part. `options` holds everything but the geometry.
std::vector<PeaksCall> peaks_calls(const HeatmapsView& heatmaps, const PeaksView& peaks,
                                   const HeatmapPeaksParams& options, const std::vector<InputGeometry>& geometries) {
  std::vector<PeaksCall> calls;
  for (const InputGeometry& geometry : geometries) {
    calls.push_back(PeaksCall{heatmaps, peaks, options});
    calls.back().params.geometry = geometry;
  }
  check_heatmap_peaks_args(heatmaps, peaks, calls.front().params);
  if (calls.size() == 1) return calls;
  const size_t element = heatmaps.type == MapType::kFloat32 ? 4 : 2;
  const int64_t cells = heatmaps.channels * heatmaps.height * heatmaps.width;
  const int64_t slots = peaks.channels * peaks.max_peaks;
  for (size_t n = 0; n < calls.size(); ++n) {
    PeaksCall& call = calls[n];
    const int64_t image = static_cast<int64_t>(n);
    call.heatmaps.data = static_cast<const char*>(heatmaps.data) + element * static_cast<size_t>(image * cells);
    call.heatmaps.batch = 1;
    call.peaks.x = peaks.x + image * slots;
    call.peaks.y = peaks.y + image * slots;
    call.peaks.score = peaks.score + image * slots;
    call.peaks.valid = peaks.valid + image * peaks.channels;
    call.peaks.batch = 1;
    check_heatmap_peaks_args(call.heatmaps, call.peaks, call.params);
  }
  return calls;
}

// The largest workspace one call of a batch needs (the calls run one after another on one
// stream); only the shapes of `heatmaps` are used.
size_t peaks_workspace_bytes(const HeatmapsView& heatmaps, const std::vector<InputGeometry>& geometries) {
  HeatmapsView part = heatmaps;
  if (geometries.size() > 1) part.batch = 1;
  size_t bytes = 0;
  for (const InputGeometry& geometry : geometries) {
    HeatmapPeaksParams params;
    params.geometry = geometry;
    bytes = std::max(bytes, heatmap_peaks_cuda_workspace_bytes(part, params));
  }
  return bytes;
}

using cuda::kWorkspaceAlignment;

const DeviceViewRequirements kDeviceHeatmaps{false, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                             "C-contiguous float32 or float16 [N, C, h, w] heatmaps"};
const DeviceViewRequirements kDevicePeakValues{true, {kFloat32}, 3, Layout::kCContiguous,
                                               "a C-contiguous float32 [N, C, k] array"};
const DeviceViewRequirements kDevicePeakCounts{true, {kInt32}, 2, Layout::kCContiguous,
                                               "a C-contiguous int32 [N, C] array"};
const DeviceViewRequirements kDeviceWorkspace{true, {kUint8}, 1, Layout::kCContiguous,
                                              "a uint8 [bytes] device buffer of "
                                              "heatmap_peaks_cuda_workspace_bytes(...) bytes or more"};

}  // namespace

void bind_heatmap_peaks(py::module_& m) {
  m.attr("MAX_PEAKS") = kMaxPeaks;

  m.def(
      "heatmap_peaks_cpu",
      [](const py::array& heatmaps, const py::object& geometry, const std::string& mode, int64_t k,
         const std::vector<double>& threshold, int64_t radius, const std::string& activation, bool refine,
         int threads) {
        const HeatmapsView view = heatmaps_view(heatmaps);
        const HeatmapPeaksParams params = params_from(geometry, mode, k, threshold, radius, activation, refine);
        Outputs out = make_outputs(view, k);
        {
          py::gil_scoped_release release;
          heatmap_peaks_cpu(view, out.view, params, threads);
        }
        return py::make_tuple(out.x, out.y, out.score, out.valid);
      },
      py::arg("heatmaps"), py::kw_only(), py::arg("geometry"), py::arg("mode"), py::arg("k"), py::arg("threshold"),
      py::arg("radius"), py::arg("activation"), py::arg("refine"), py::arg("threads") = 0,
      (std::string("Peaks of heatmaps (float32/float16 [N, C, h, w], C-contiguous) in source pixels: returns (x, y, "
                   "score) float32 [N, C, k] and valid int32 [N, C]; entries past valid are NaN. mode 'peaks' (local "
                   "maxima >= threshold, one value or one per channel, in score units) or 'argmax' (k = 1, no "
                   "threshold). geometry: where every image of the batch lies in the model input. threads: CPU "
                   "threads (0: the default count). ") +
       binding::kGeometryDoc)
          .c_str());

  m.def(
      "heatmap_peaks_cuda_host",
      [](const py::array& heatmaps, const py::object& geometry, const std::string& mode, int64_t k,
         const std::vector<double>& threshold, int64_t radius, const std::string& activation, bool refine) {
        const HeatmapsView view = heatmaps_view(heatmaps);
        const HeatmapPeaksParams params = params_from(geometry, mode, k, threshold, radius, activation, refine);
        Outputs out = make_outputs(view, k);
        {
          py::gil_scoped_release release;
          heatmap_peaks_cuda_host(view, out.view, params);
        }
        return py::make_tuple(out.x, out.y, out.score, out.valid);
      },
      py::arg("heatmaps"), py::kw_only(), py::arg("geometry"), py::arg("mode"), py::arg("k"), py::arg("threshold"),
      py::arg("radius"), py::arg("activation"), py::arg("refine"),
      "heatmap_peaks_cpu's op run by the CUDA kernels on host arrays: copies the heatmaps to the current CUDA "
      "device, runs, waits and copies the peaks back. Raises RuntimeError naming the CUDA error, or saying that "
      "the module was built without CUDA.");

  m.def(
      "heatmap_peaks_cuda",
      [](py::handle heatmaps, py::handle out_x, py::handle out_y, py::handle out_score, py::handle out_valid,
         const std::vector<py::object>& geometries, const std::string& mode, int64_t k,
         const std::vector<double>& threshold, int64_t radius, const std::string& activation, bool refine,
         py::handle workspace, py::handle stream) {
        constexpr const char* op = "heatmap_peaks";
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, op);
        // Every argument is checked from its metadata before CUDA is touched.
        binding::DeviceArgs args(*on);
        DeviceView& maps = args.add(heatmaps, "heatmaps", kDeviceHeatmaps);
        DeviceView& x = args.add(out_x, "out_x", kDevicePeakValues);
        DeviceView& y = args.add(out_y, "out_y", kDevicePeakValues);
        DeviceView& score = args.add(out_score, "out_score", kDevicePeakValues);
        DeviceView& valid = args.add(out_valid, "out_valid", kDevicePeakCounts);
        const DeviceView* workspace_in =
            workspace.is_none() ? nullptr : &args.add(workspace, "workspace", kDeviceWorkspace);

        HeatmapsView view;
        view.data = maps.data;
        view.type = cuda::same_dtype(maps.dtype, kFloat32) ? MapType::kFloat32 : MapType::kFloat16;
        view.batch = maps.shape[0];
        view.channels = maps.shape[1];
        view.height = maps.shape[2];
        view.width = maps.shape[3];
        PeaksView peaks;
        peaks.x = static_cast<float*>(x.data);
        peaks.y = static_cast<float*>(y.data);
        peaks.score = static_cast<float*>(score.data);
        peaks.valid = static_cast<int32_t*>(valid.data);
        peaks.batch = view.batch;
        peaks.channels = view.channels;
        peaks.max_peaks = k;
        // The parameters first (k among them), then the outputs' shapes, which follow from k.
        const std::vector<InputGeometry> geometry_list = binding::geometries_from(geometries, view.batch, true);
        const std::vector<PeaksCall> calls =
            peaks_calls(view, peaks, options_from(mode, k, threshold, radius, activation, refine), geometry_list);
        const std::vector<int64_t> per_peak{view.batch, view.channels, k};
        for (const DeviceView* output : {&x, &y, &score}) {
          binding::require_shape(*output, per_peak, "N x C x k: one entry per peak of every image and channel");
        }
        binding::require_shape(valid, {view.batch, view.channels}, "one count per image and channel");
        for (const DeviceView* argument : args.all()) binding::require_aligned(*argument);
        if (workspace_in) binding::require_aligned(*workspace_in, kWorkspaceAlignment);
        std::vector<const DeviceView*> all;
        for (const DeviceView* argument : args.all()) all.push_back(argument);
        binding::refuse_overlaps({&x, &y, &score, &valid}, all);

        require_cuda(op);
        const int device = prepare_device_views(args.all(), *on, op);
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device, op);
          const auto enqueue = [&](void* memory, size_t bytes) {
            for (const PeaksCall& call : calls) {
              heatmap_peaks_cuda(call.heatmaps, call.peaks, call.params, memory, bytes, on->handle());
            }
          };
          if (workspace_in) {
            enqueue(workspace_in->data, static_cast<size_t>(workspace_in->shape[0]));
          } else {
            const size_t bytes = peaks_workspace_bytes(view, geometry_list);
            // Given back on the stream after the op, so nothing waits for it here.
            const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, *on, op);
            enqueue(scratch.get(), bytes);
          }
        }
      },
      py::arg("heatmaps"), py::kw_only(), py::arg("out_x"), py::arg("out_y"), py::arg("out_score"),
      py::arg("out_valid"), py::arg("geometries"), py::arg("mode"), py::arg("k"), py::arg("threshold"),
      py::arg("radius"), py::arg("activation"), py::arg("refine"), py::arg("workspace") = py::none(),
      py::arg("stream") = py::none(),
      "heatmap_peaks_cpu's op on CUDA arrays, zero-copy: heatmaps (float32/float16 [N, C, h, w], C-contiguous) in, "
      "the caller's out_x, out_y, out_score (float32 [N, C, k]) and out_valid (int32 [N, C]) written. geometries: "
      "one geometry for the whole batch, or one per image. The heatmap values are not checked on the device: "
      "a NaN cell is never a peak nor suppresses a neighbour, and infinities take part in the comparisons as the "
      "numbers they are (the host-array entries refuse both). Every array is any exporter's "
      "__cuda_array_interface__ / DLPack CUDA array on the stream's device. Enqueued on `stream` (a radedge Stream; "
      "None: the legacy default stream) and not waited for. `workspace`: a uint8 device buffer of "
      "heatmap_peaks_cuda_workspace_bytes(...) bytes, 256-byte aligned, keeps the call allocation-free (for CUDA "
      "graphs); None takes one from CUDA's stream-ordered pool. Returns None.");

  m.def(
      "heatmap_peaks_cuda_workspace_bytes",
      [](int64_t batch, int64_t channels, int64_t height, int64_t width, const std::vector<py::object>& geometries) {
        HeatmapsView view;
        view.batch = batch;
        view.channels = channels;
        view.height = height;
        view.width = width;
        return peaks_workspace_bytes(view, binding::geometries_from(geometries, batch, true));
      },
      py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"), py::kw_only(),
      py::arg("geometries"),
      "Bytes of device workspace heatmap_peaks_cuda needs for heatmaps [batch, channels, height, width] and these "
      "geometries (one for the batch, or one per image); the same for every k, threshold and mode.");
}

}  // namespace radedge
