// Bindings of the device-pointer detection entries (decode_dense_cuda, decode_boxes_cuda, nms_cuda
// in radedge/detection.h) for CUDA arrays from any exporter (radedge.cuda.DeviceArray, torch,
// CuPy, pycuda, DLPack capsules), zero-copy, enqueued on the caller's stream. Inputs and the
// fixed-size outputs are the caller's arrays; with a caller workspace nothing is allocated and
// nothing waits, so the calls can be captured in a CUDA graph. The host-array bindings are in
// detection_binding.cpp.
//
// Refused values cannot stop a queued stream: the CUDA ops mark them in the outputs instead,
// valid[n] = -1 for an image whose scores hold a NaN (or whose candidate boxes are not finite, or
// whose geometry is invalid) and keep_count = -1 for nms, with every slot of that image
// zeroed (keep: -1). The caller reads that after the stream has run the op.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "detection_args.h"
#include "device_array.h"
#include "device_checks.h"
#include "radedge/cuda_memory.h"
#include "radedge/detection.h"

namespace py = pybind11;

namespace radedge {
namespace {

// What the ops require of their workspace: cudaMalloc's alignment.
using cuda::kWorkspaceAlignment;

const DeviceViewRequirements kDenseScores{false, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                          "C-contiguous float32 or float16 [N, K, h, w] class scores"};
const DeviceViewRequirements kDenseDistances{false, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                             "C-contiguous float32 or float16 [N, 4, h, w] distances"};
const DeviceViewRequirements kDenseCenterness{false, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                              "C-contiguous float32 or float16 [N, 1, h, w] centerness"};
const DeviceViewRequirements kDecodedBoxes{false, {kFloat32, kFloat16}, 3, Layout::kCContiguous,
                                           "C-contiguous float32 or float16 [N, M, 4] boxes"};
const DeviceViewRequirements kDecodedScores{false, {kFloat32, kFloat16}, 3, Layout::kCContiguous,
                                            "C-contiguous float32 or float16 [N, M, K] scores"};
// A uint8 [N, sizeof(InputGeometry)] array is an array of InputGeometry in device memory (its
// layout: radedge/geometry.h).
const DeviceViewRequirements kGeometries{false, {kUint8}, 2, Layout::kCContiguous,
                                         "a C-contiguous uint8 [N, " + std::to_string(sizeof(InputGeometry)) +
                                             "] geometry table (radedge.ops.detection.geometry_table)"};
const DeviceViewRequirements kOutBoxes{true, {kFloat32}, 3, Layout::kCContiguous,
                                       "a C-contiguous float32 [N, max_detections, 4] array"};
const DeviceViewRequirements kOutScores{true, {kFloat32}, 2, Layout::kCContiguous,
                                        "a C-contiguous float32 [N, max_detections] array"};
const DeviceViewRequirements kOutClasses{true, {kInt32}, 2, Layout::kCContiguous,
                                         "a C-contiguous int32 [N, max_detections] array"};
const DeviceViewRequirements kOutValid{true, {kInt32}, 1, Layout::kCContiguous, "a C-contiguous int32 [N] array"};
const DeviceViewRequirements kNmsBoxes{false, {kFloat32}, 2, Layout::kCContiguous,
                                       "C-contiguous float32 [M, 4] boxes (x1 y1 x2 y2)"};
const DeviceViewRequirements kNmsScores{false, {kFloat32}, 1, Layout::kCContiguous, "C-contiguous float32 [M]"};
const DeviceViewRequirements kNmsClasses{false, {kInt32}, 1, Layout::kCContiguous,
                                         "C-contiguous int32 [M] (or None for class-agnostic NMS)"};
const DeviceViewRequirements kOutKeep{true, {kInt32}, 1, Layout::kCContiguous,
                                      "a C-contiguous int32 [max_detections] array"};
const DeviceViewRequirements kOutKeepCount{true, {kInt32}, 1, Layout::kCContiguous, "an int32 [1] array"};

DeviceViewRequirements workspace_requirements(const char* op) {
  return DeviceViewRequirements{true, {kUint8}, 1, Layout::kCContiguous,
                                std::string("a uint8 [bytes] device buffer of ") + op +
                                    "_cuda_workspace_bytes(...) bytes or more"};
}

binding::TensorArg tensor_arg(const DeviceView& view) {
  binding::TensorArg tensor;
  tensor.name = view.name;
  tensor.type = cuda::same_dtype(view.dtype, kFloat32) ? TensorType::kFloat32 : TensorType::kFloat16;
  tensor.shape = view.shape;
  tensor.data = view.data;
  tensor.description = view.describe();
  return tensor;
}

// The four caller-allocated outputs of decode_dense / decode_boxes.
struct DetectionsArgs {
  DeviceView* boxes;
  DeviceView* scores;
  DeviceView* classes;
  DeviceView* valid;
};

DetectionsArgs add_detections(binding::DeviceArgs& args, py::handle boxes, py::handle scores, py::handle classes,
                              py::handle valid) {
  return DetectionsArgs{&args.add(boxes, "out_boxes", kOutBoxes), &args.add(scores, "out_scores", kOutScores),
                        &args.add(classes, "out_classes", kOutClasses), &args.add(valid, "out_valid", kOutValid)};
}

DetectionsView detections_view(const DetectionsArgs& out, int64_t batch, int64_t max_detections) {
  binding::require_shape(*out.boxes, {batch, max_detections, 4}, "N images x max_detections x (x1, y1, x2, y2)");
  binding::require_shape(*out.scores, {batch, max_detections}, "N images x max_detections");
  binding::require_shape(*out.classes, {batch, max_detections}, "N images x max_detections");
  binding::require_shape(*out.valid, {batch}, "one count per image");
  for (const DeviceView* view : {out.boxes, out.scores, out.classes, out.valid}) binding::require_aligned(*view);
  DetectionsView view;
  view.boxes = static_cast<float*>(out.boxes->data);
  view.scores = static_cast<float*>(out.scores->data);
  view.classes = static_cast<int32_t*>(out.classes->data);
  view.valid = static_cast<int32_t*>(out.valid->data);
  view.batch = batch;
  view.max_detections = max_detections;
  return view;
}

const InputGeometry* geometries_pointer(const DeviceView* table, int64_t batch) {
  if (table == nullptr) return nullptr;
  binding::require_shape(*table, {batch, static_cast<int64_t>(sizeof(InputGeometry))},
                         "one InputGeometry per image, as geometry_table makes them");
  binding::require_aligned(*table, alignof(InputGeometry));
  return static_cast<const InputGeometry*>(table->data);
}

// Every output against every argument; inputs may share memory with each other.
void refuse_output_overlaps(binding::DeviceArgs& args, const std::vector<const DeviceView*>& outputs) {
  std::vector<const DeviceView*> all;
  for (const DeviceView* view : args.all()) all.push_back(view);
  binding::refuse_overlaps(outputs, all);
}

// Steps 4 to 6 of device_array.h: the device, then the op enqueued with the GIL released, on the
// caller's workspace or on one taken from the stream-ordered pool and given back after the op.
template <typename Enqueue, typename Bytes>
void run_on_device(binding::DeviceArgs& args, const cuda::Stream& stream, const DeviceView* workspace,
                   const char* op, const Bytes& workspace_bytes, const Enqueue& enqueue) {
  require_cuda(op);
  const int device = prepare_device_views(args.all(), stream, op);
  py::gil_scoped_release release;
  cuda::DeviceGuard guard(device, op);
  if (workspace != nullptr) {
    enqueue(workspace->data, static_cast<size_t>(workspace->shape[0]));
  } else {
    const size_t bytes = workspace_bytes();
    const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, stream, op);
    enqueue(scratch.get(), bytes);
  }
}

std::vector<binding::TensorArg> add_levels(binding::DeviceArgs& args, const std::vector<py::object>& arrays,
                                           const char* name, const DeviceViewRequirements& required) {
  std::vector<binding::TensorArg> tensors;
  for (size_t l = 0; l < arrays.size(); ++l) {
    tensors.push_back(tensor_arg(args.add(arrays[l], name + ("[" + std::to_string(l) + "]"), required)));
  }
  return tensors;
}

const char* kOutputsDoc =
    " Writes the caller's CUDA arrays out_boxes (float32 [N, max_detections, 4], x1 y1 x2 y2), out_scores (float32 "
    "[N, max_detections]), out_classes (int32 [N, max_detections]) and out_valid (int32 [N]): image n's "
    "detections are its first out_valid[n] slots, best first, the other slots zero; out_valid[n] = -1 marks an "
    "image the op refused (a NaN score or centerness, a non-finite probability or candidate box, an invalid "
    "geometry row), all of whose slots are zero. geometries: None (model-input pixels, unclipped) or a uint8 [N, "
    "112] CUDA array of one InputGeometry per image (radedge.ops.detection.geometry_table). Every array is any "
    "exporter's __cuda_array_interface__ / DLPack CUDA array on the stream's device. Enqueued on `stream` (a "
    "radedge Stream; None: the legacy default stream) and not waited for: keep the arrays alive and read the "
    "outputs after the stream has run it. `workspace`: a uint8 device buffer of *_cuda_workspace_bytes(...) "
    "bytes, 256-byte aligned, keeps the call allocation-free (for CUDA graphs); None takes one from CUDA's "
    "stream-ordered pool. Returns None.";

}  // namespace

void bind_detection_cuda(py::module_& m) {
  m.def(
      "decode_dense_cuda",
      [](const std::vector<py::object>& scores, const std::vector<py::object>& distances,
         const std::optional<std::vector<py::object>>& centerness, const std::vector<double>& strides,
         py::handle out_boxes, py::handle out_scores, py::handle out_classes, py::handle out_valid,
         double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
         bool class_agnostic, const std::string& scores_are, const std::string& centerness_mode,
         const std::string& distance_units, double cell_offset, py::handle geometries, py::handle workspace,
         py::handle stream) {
        constexpr const char* op = "decode_dense";
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, op);
        // Every argument is checked from its metadata before CUDA is touched.
        binding::DeviceArgs args(*on);
        const std::vector<binding::TensorArg> score_args = add_levels(args, scores, "scores", kDenseScores);
        const std::vector<binding::TensorArg> distance_args =
            add_levels(args, distances, "distances", kDenseDistances);
        std::optional<std::vector<binding::TensorArg>> centerness_args;
        if (centerness) centerness_args = add_levels(args, *centerness, "centerness", kDenseCenterness);
        const DetectionsArgs out = add_detections(args, out_boxes, out_scores, out_classes, out_valid);
        const DeviceView* geometry_table =
            geometries.is_none() ? nullptr : &args.add(geometries, "geometries", kGeometries);
        const DeviceView* workspace_in =
            workspace.is_none() ? nullptr : &args.add(workspace, "workspace", workspace_requirements(op));

        const NmsParams params =
            binding::nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
        const binding::DenseInput input = binding::dense_input(score_args, distance_args, centerness_args, strides,
                                                               scores_are, centerness_mode, distance_units,
                                                               cell_offset);
        for (const DeviceView* view : args.all()) binding::require_aligned(*view);
        const DetectionsView detections = detections_view(out, input.head.batch, params.max_detections);
        const InputGeometry* source = geometries_pointer(geometry_table, input.head.batch);
        check_decode_dense_args(input.head, input.decode, params, detections);
        if (workspace_in) binding::require_aligned(*workspace_in, kWorkspaceAlignment);
        refuse_output_overlaps(args, {out.boxes, out.scores, out.classes, out.valid});

        run_on_device(
            args, *on, workspace_in, op, [&] { return decode_dense_cuda_workspace_bytes(input.head, params); },
            [&](void* memory, size_t bytes) {
              decode_dense_cuda(input.head, input.decode, params, source, detections, memory, bytes, on->handle());
            });
      },
      py::arg("scores"), py::arg("distances"), py::arg("centerness"), py::arg("strides"), py::kw_only(),
      py::arg("out_boxes"), py::arg("out_scores"), py::arg("out_classes"), py::arg("out_valid"),
      py::arg("score_threshold"), py::arg("iou_threshold"), py::arg("pre_nms_top_k"), py::arg("max_detections"),
      py::arg("class_agnostic") = false, py::arg("scores_are") = "logits", py::arg("centerness_mode") = "sqrt",
      py::arg("distance_units") = "stride", py::arg("cell_offset") = 0.5, py::arg("geometries") = py::none(),
      py::arg("workspace") = py::none(), py::arg("stream") = py::none(),
      (std::string(binding::kDenseDoc) + " On CUDA arrays, zero-copy." + kOutputsDoc).c_str());

  m.def(
      "decode_boxes_cuda",
      [](py::handle boxes, py::handle scores, py::handle out_boxes, py::handle out_scores, py::handle out_classes,
         py::handle out_valid, double score_threshold, double iou_threshold, int64_t pre_nms_top_k,
         int64_t max_detections, bool class_agnostic, const std::string& scores_are, const std::string& box_format,
         py::handle geometries, py::handle workspace, py::handle stream) {
        constexpr const char* op = "decode_boxes";
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, op);
        binding::DeviceArgs args(*on);
        const binding::TensorArg boxes_arg = tensor_arg(args.add(boxes, "boxes", kDecodedBoxes));
        const binding::TensorArg scores_arg = tensor_arg(args.add(scores, "scores", kDecodedScores));
        const DetectionsArgs out = add_detections(args, out_boxes, out_scores, out_classes, out_valid);
        const DeviceView* geometry_table =
            geometries.is_none() ? nullptr : &args.add(geometries, "geometries", kGeometries);
        const DeviceView* workspace_in =
            workspace.is_none() ? nullptr : &args.add(workspace, "workspace", workspace_requirements(op));

        BoxesDecodeParams decode;
        decode.scores = binding::score_kind(scores_are);
        decode.format = binding::box_format(box_format);
        const NmsParams params =
            binding::nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
        const BoxesView input = binding::boxes_input(boxes_arg, scores_arg);
        for (const DeviceView* view : args.all()) binding::require_aligned(*view);
        const DetectionsView detections = detections_view(out, input.batch, params.max_detections);
        const InputGeometry* source = geometries_pointer(geometry_table, input.batch);
        check_decode_boxes_args(input, decode, params, detections);
        if (workspace_in) binding::require_aligned(*workspace_in, kWorkspaceAlignment);
        refuse_output_overlaps(args, {out.boxes, out.scores, out.classes, out.valid});

        run_on_device(
            args, *on, workspace_in, op, [&] { return decode_boxes_cuda_workspace_bytes(input, params); },
            [&](void* memory, size_t bytes) {
              decode_boxes_cuda(input, decode, params, source, detections, memory, bytes, on->handle());
            });
      },
      py::arg("boxes"), py::arg("scores"), py::kw_only(), py::arg("out_boxes"), py::arg("out_scores"),
      py::arg("out_classes"), py::arg("out_valid"), py::arg("score_threshold"), py::arg("iou_threshold"),
      py::arg("pre_nms_top_k"), py::arg("max_detections"), py::arg("class_agnostic") = false,
      py::arg("scores_are") = "probabilities", py::arg("box_format") = "xyxy", py::arg("geometries") = py::none(),
      py::arg("workspace") = py::none(), py::arg("stream") = py::none(),
      (std::string(binding::kBoxesDoc) + " On CUDA arrays, zero-copy." + kOutputsDoc).c_str());

  m.def(
      "nms_cuda",
      [](py::handle boxes, py::handle scores, py::handle classes, py::handle out_keep, py::handle out_count,
         double iou_threshold, int64_t max_detections, py::handle workspace, py::handle stream) {
        constexpr const char* op = "nms";
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, op);
        binding::DeviceArgs args(*on);
        DeviceView& boxes_in = args.add(boxes, "boxes", kNmsBoxes);
        DeviceView& scores_in = args.add(scores, "scores", kNmsScores);
        const DeviceView* classes_in = classes.is_none() ? nullptr : &args.add(classes, "classes", kNmsClasses);
        DeviceView& keep = args.add(out_keep, "out_keep", kOutKeep);
        DeviceView& keep_count = args.add(out_count, "out_count", kOutKeepCount);
        const DeviceView* workspace_in =
            workspace.is_none() ? nullptr : &args.add(workspace, "workspace", workspace_requirements(op));

        const int64_t count = boxes_in.shape[0];
        binding::require_shape(boxes_in, {count, 4}, "x1 y1 x2 y2 per box");
        binding::require_shape(scores_in, {count}, "one per box");
        if (classes_in) binding::require_shape(*classes_in, {count}, "one per box");
        NmsBoxesView input;
        input.boxes = static_cast<const float*>(boxes_in.data);
        input.scores = static_cast<const float*>(scores_in.data);
        input.classes = classes_in ? static_cast<const int32_t*>(classes_in->data) : nullptr;
        input.count = count;
        const float threshold = static_cast<float>(iou_threshold);
        check_nms_args(input, threshold, max_detections);
        binding::require_shape(keep, {max_detections}, "one slot per detection kept at most");
        binding::require_shape(keep_count, {1}, "the number of boxes kept");
        for (const DeviceView* view : args.all()) binding::require_aligned(*view);
        if (workspace_in) binding::require_aligned(*workspace_in, kWorkspaceAlignment);
        refuse_output_overlaps(args, {&keep, &keep_count});

        run_on_device(
            args, *on, workspace_in, op, [&] { return nms_cuda_workspace_bytes(count, max_detections); },
            [&](void* memory, size_t bytes) {
              nms_cuda(input, threshold, max_detections, static_cast<int32_t*>(keep.data),
                       static_cast<int32_t*>(keep_count.data), memory, bytes, on->handle());
            });
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::kw_only(), py::arg("out_keep"),
      py::arg("out_count"), py::arg("iou_threshold"), py::arg("max_detections"), py::arg("workspace") = py::none(),
      py::arg("stream") = py::none(),
      (std::string(binding::kNmsDoc) +
       " On CUDA arrays, zero-copy: writes the kept indices, in that order, to the caller's out_keep (int32 "
       "[max_detections]; entries past the count are -1) and their count to out_count (int32 [1]); out_count = -1 "
       "(and out_keep all -1) marks refused input: a NaN score or a non-finite box. Every array is any exporter's "
       "__cuda_array_interface__ / DLPack CUDA array on the stream's device. Enqueued on `stream` (a radedge "
       "Stream; None: the legacy default stream) and not waited for. `workspace`: a uint8 device buffer of "
       "nms_cuda_workspace_bytes(M, max_detections) bytes, 256-byte aligned, keeps the call allocation-free (for "
       "CUDA graphs); None takes one from CUDA's stream-ordered pool. Returns None.")
          .c_str());

  m.def(
      "decode_dense_cuda_workspace_bytes",
      [](int64_t batch, int64_t classes, const std::vector<std::pair<int64_t, int64_t>>& level_sizes,
         int64_t pre_nms_top_k, int64_t max_detections) {
        NmsParams params;
        params.pre_nms_top_k = pre_nms_top_k;
        params.max_detections = max_detections;
        check_nms_params(params);
        DenseHeadView head;
        head.batch = batch;
        head.classes = classes;
        for (const auto& [height, width] : level_sizes) {
          DenseLevelView level;
          level.height = height;
          level.width = width;
          head.levels.push_back(level);
        }
        require_cuda("decode_dense");
        return decode_dense_cuda_workspace_bytes(head, params);
      },
      py::arg("batch"), py::arg("classes"), py::arg("level_sizes"), py::kw_only(), py::arg("pre_nms_top_k"),
      py::arg("max_detections"),
      "Bytes of device workspace decode_dense_cuda needs for N = batch images, K = classes and levels of "
      "level_sizes [(h, w), ...], on the current CUDA device (the sort's temporary storage depends on it).");

  m.def(
      "decode_boxes_cuda_workspace_bytes",
      [](int64_t batch, int64_t count, int64_t classes, int64_t pre_nms_top_k, int64_t max_detections) {
        NmsParams params;
        params.pre_nms_top_k = pre_nms_top_k;
        params.max_detections = max_detections;
        check_nms_params(params);
        BoxesView input;
        input.batch = batch;
        input.count = count;
        input.classes = classes;
        require_cuda("decode_boxes");
        return decode_boxes_cuda_workspace_bytes(input, params);
      },
      py::arg("batch"), py::arg("count"), py::arg("classes"), py::kw_only(), py::arg("pre_nms_top_k"),
      py::arg("max_detections"),
      "Bytes of device workspace decode_boxes_cuda needs for boxes [batch, count, 4] and scores [batch, count, "
      "classes], on the current CUDA device.");

  m.def(
      "nms_cuda_workspace_bytes",
      [](int64_t count, int64_t max_detections) {
        require_cuda("nms");
        return nms_cuda_workspace_bytes(count, max_detections);
      },
      py::arg("count"), py::arg("max_detections"),
      "Bytes of device workspace nms_cuda needs for `count` boxes and max_detections, on the current CUDA device.");
}

}  // namespace radedge
