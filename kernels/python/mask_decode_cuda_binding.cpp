// Binding of the device-pointer mask decode entry (mask_decode_cuda in radedge/mask_decode.h) for
// CUDA arrays from any exporter (radedge.cuda.DeviceArray, torch, CuPy, pycuda, DLPack capsules),
// zero-copy, enqueued on the caller's stream; and of the host arithmetic that turns the tallies it
// leaves on the device into statistics. The host-array bindings are in mask_decode_binding.cpp.
//
// The per-label tallies and the call's counters are plain uint64 arrays, so that any library can
// allocate them and numpy can read them back:
//   tallies   uint64 [labels, 7]: per label (1, 2, ... in order) pixel_count, sum_x, sum_y, min_x,
//             min_y, max_x, max_y, as radedge::LabelTally;
//   counters  uint64 [2]: run_count, non_finite_logits, as radedge::MaskDecodeCounters.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"
#include "mask_decode_args.h"
#include "radedge/cuda_memory.h"
#include "radedge/mask_decode.h"

namespace py = pybind11;

namespace radedge {
namespace {

constexpr const char* kOp = "mask_decode";
// cudaMalloc's alignment, which mask_decode_cuda requires of its workspace.
using cuda::kWorkspaceAlignment;
constexpr int64_t kTallyFields = 7;
constexpr int64_t kCounterFields = 2;
static_assert(sizeof(LabelTally) == sizeof(uint64_t) * kTallyFields, "LabelTally is 7 packed uint64");
static_assert(sizeof(MaskDecodeCounters) == sizeof(uint64_t) * kCounterFields, "MaskDecodeCounters is 2 uint64");

const DeviceViewRequirements kLogits{false, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                     "float32 or float16 [N, C, h, w]"};
const DeviceViewRequirements kMask{true, {kUint8}, 2, Layout::kCContiguous, "a uint8 [height, width] array"};
const DeviceViewRequirements kRuns{true, {kUint32}, 2, Layout::kCContiguous,
                                   "uint32 [capacity, 2] (value, length) pairs"};
const DeviceViewRequirements kTallies{true, {kUint64}, 2, Layout::kCContiguous,
                                      "uint64 [labels, 7] (pixel_count, sum_x, sum_y, min_x, min_y, max_x, max_y "
                                      "of each label)"};
const DeviceViewRequirements kCounters{true, {kUint64}, 1, Layout::kCContiguous,
                                       "uint64 [2] (run_count, non_finite_logits)"};
const DeviceViewRequirements kWorkspace{true, {kUint8}, 1, Layout::kCContiguous,
                                        "a uint8 [bytes] device buffer of mask_decode_cuda_workspace_bytes(...) "
                                        "bytes or more"};

LogitsView logits_view(const DeviceView& view) {
  LogitsView logits;
  logits.data = view.data;
  logits.type = cuda::same_dtype(view.dtype, kFloat32) ? LogitType::kFloat32 : LogitType::kFloat16;
  logits.batch = view.shape[0];
  logits.channels = view.shape[1];
  logits.height = view.shape[2];
  logits.width = view.shape[3];
  return logits;
}

}  // namespace

void bind_mask_decode_cuda(py::module_& m) {
  m.def(
      "mask_decode_cuda",
      [](py::handle logits, int64_t image, py::handle mask, const std::string& activation,
         const std::vector<double>& thresholds, py::handle geometry, double row_spacing_mm, double column_spacing_mm,
         py::handle runs, py::handle tallies, py::handle counters, py::handle workspace, py::handle stream) {
        const MaskDecodeParams params =
            binding::mask_params_from(activation, thresholds, geometry, row_spacing_mm, column_spacing_mm);
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, kOp);
        // Every argument is checked from its metadata before CUDA is touched.
        DeviceView logits_in = as_device_view(logits, "logits", kLogits, *on);
        DeviceView mask_out = as_device_view(mask, "mask", kMask, *on);
        const bool has_runs = !runs.is_none();
        DeviceView runs_out;
        if (has_runs) runs_out = as_device_view(runs, "runs", kRuns, *on);
        DeviceView tallies_out = as_device_view(tallies, "tallies", kTallies, *on);
        DeviceView counters_out = as_device_view(counters, "counters", kCounters, *on);
        const bool own_workspace = workspace.is_none();
        DeviceView workspace_in;
        if (!own_workspace) workspace_in = as_device_view(workspace, "workspace", kWorkspace, *on);

        if (has_runs && (runs_out.shape[1] != 2 || runs_out.shape[0] < 1)) {
          throw std::invalid_argument("runs must be uint32 [capacity, 2] with capacity >= 1 (value, length pairs); "
                                      "got " + runs_out.describe() + ". Pass runs=None for no run-length encoding");
        }
        const LogitsView logits_arg = logits_view(logits_in);
        const MaskView mask_arg{static_cast<uint8_t*>(mask_out.data), mask_out.shape[0], mask_out.shape[1]};
        const RunsView runs_arg = has_runs ? RunsView{static_cast<uint32_t*>(runs_out.data), runs_out.shape[0]}
                                           : RunsView{};
        check_mask_decode_args(logits_arg, image, params, mask_arg, runs_arg);
        const int64_t labels = mask_label_count(params.activation, logits_arg.channels);
        if (tallies_out.shape[0] != labels || tallies_out.shape[1] != kTallyFields) {
          throw std::invalid_argument("tallies must be uint64 [" + std::to_string(labels) + ", 7] for a " + activation +
                                      " head of " + std::to_string(logits_arg.channels) + " channels (one row per " +
                                      "label); got " + tallies_out.describe());
        }
        if (counters_out.shape[0] != kCounterFields) {
          throw std::invalid_argument("counters must be uint64 [2] (run_count, non_finite_logits); got " +
                                      counters_out.describe());
        }
        require_aligned(tallies_out, sizeof(uint64_t));
        require_aligned(counters_out, sizeof(uint64_t));
        std::vector<const DeviceView*> written{&mask_out, &tallies_out, &counters_out};
        if (has_runs) written.push_back(&runs_out);
        if (!own_workspace) written.push_back(&workspace_in);
        refuse_overlaps(written, {&logits_in}, kOp);

        require_cuda(kOp);
        std::vector<DeviceView*> views{&logits_in, &mask_out, &tallies_out, &counters_out};
        if (has_runs) views.push_back(&runs_out);
        if (!own_workspace) views.push_back(&workspace_in);
        const int device = prepare_device_views(views, *on, kOp);
        auto* tally_data = static_cast<LabelTally*>(tallies_out.data);
        auto* counter_data = static_cast<MaskDecodeCounters*>(counters_out.data);
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device, kOp);
          if (own_workspace) {
            const size_t bytes = mask_decode_cuda_workspace_bytes(logits_arg.height, logits_arg.width,
                                                                  mask_arg.height, mask_arg.width, runs_arg.capacity);
            // Given back on the stream after the op, so nothing waits for it here.
            const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, *on, kOp);
            mask_decode_cuda(logits_arg, image, params, mask_arg, runs_arg, tally_data, counter_data, scratch.get(),
                             bytes, on->handle());
          } else {
            mask_decode_cuda(logits_arg, image, params, mask_arg, runs_arg, tally_data, counter_data,
                             workspace_in.data, static_cast<size_t>(workspace_in.shape[0]), on->handle());
          }
        }
      },
      py::arg("logits"), py::arg("image"), py::arg("mask"), py::kw_only(), py::arg("activation"),
      py::arg("thresholds"), py::arg("geometry"), py::arg("row_spacing_mm") = 0.0,
      py::arg("column_spacing_mm") = 0.0, py::arg("runs") = py::none(),
      py::arg("tallies"), py::arg("counters"), py::arg("workspace") = py::none(), py::arg("stream") = py::none(),
      (std::string("mask_decode_cpu's op on CUDA arrays, zero-copy: decodes logits[image] (float32/float16 [N, C, h, "
                   "w], C-contiguous) into mask (uint8 [height, width]) and, when runs (uint32 [capacity, 2]) is "
                   "given, its run-length encoding; tallies (uint64 [labels, 7]: pixel_count, sum_x, sum_y, min_x, "
                   "min_y, max_x, max_y per label) and counters (uint64 [2]: run_count, non_finite_logits) receive "
                   "what the statistics are made of (mask_decode_statistics). Every array is any exporter's "
                   "__cuda_array_interface__ / DLPack array on the stream's device, and the outputs must not "
                   "overlap. Enqueued on `stream` (a radedge Stream; None: the legacy default stream) and not "
                   "waited for: the results are meaningful only once the stream has run the op and counters[1] "
                   "(non-finite logits) is 0. `workspace`: a uint8 device buffer of "
                   "mask_decode_cuda_workspace_bytes(...) bytes, 256-byte aligned, keeps the call allocation-free "
                   "(for CUDA graphs); None takes one from CUDA's stream-ordered pool. ") +
       binding::kGeometryDoc + " The mask's shape is the output size, spread over the source image.")
          .c_str());

  m.def(
      "mask_decode_cuda_workspace_bytes",
      [](int64_t logits_height, int64_t logits_width, int64_t mask_height, int64_t mask_width, int64_t run_capacity) {
        return mask_decode_cuda_workspace_bytes(logits_height, logits_width, mask_height, mask_width, run_capacity);
      },
      py::arg("logits_height"), py::arg("logits_width"), py::arg("mask_height"), py::arg("mask_width"),
      py::arg("run_capacity") = 0,
      "Bytes of device workspace mask_decode_cuda needs for h x w logits into a mask_height x mask_width mask "
      "with run_capacity runs (0: no run-length encoding).");

  m.def(
      "mask_decode_statistics",
      [](const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& tallies, int64_t source_rows,
         int64_t source_columns, int64_t mask_height, int64_t mask_width, double row_spacing_mm,
         double column_spacing_mm) {
        if (tallies.ndim() != 2 || tallies.shape(1) != kTallyFields) {
          throw std::invalid_argument("tallies must be uint64 [labels, 7], as mask_decode_cuda writes them; got " +
                                      std::to_string(tallies.ndim()) + " dimensions");
        }
        if (source_rows < 1 || source_columns < 1 || mask_height < 1 || mask_width < 1) {
          throw std::invalid_argument("source and mask sizes must be at least 1 x 1");
        }
        MaskDecodeParams params;
        params.geometry.source_rows = source_rows;
        params.geometry.source_columns = source_columns;
        params.row_spacing_mm = row_spacing_mm;
        params.column_spacing_mm = column_spacing_mm;
        const MaskView mask{nullptr, mask_height, mask_width};
        static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "LabelTally fields are 64-bit");
        const auto* rows = reinterpret_cast<const LabelTally*>(tallies.data());
        return binding::label_stats_list(mask_label_stats(rows, tallies.shape(0), params, mask));
      },
      py::arg("tallies"), py::kw_only(), py::arg("source_rows"), py::arg("source_columns"), py::arg("mask_height"),
      py::arg("mask_width"), py::arg("row_spacing_mm") = 0.0, py::arg("column_spacing_mm") = 0.0,
      "The per-label statistics [{'pixel_count', 'bbox', 'centroid', 'area_mm2'}, ...] of tallies (uint64 [labels, "
      "7] on the host, copied back from mask_decode_cuda's), computed by the same code as mask_decode_cpu's.");
}

}  // namespace radedge
