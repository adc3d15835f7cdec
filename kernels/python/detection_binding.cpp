// Bindings of the detection ops (decode_dense, decode_boxes, nms) on numpy arrays: each
// array's dtype, rank and layout are checked here, the arrays of one call against each
// other in detection_args.cpp (shared with the CUDA-array bindings), and the ops' own checks
// (check_decode_dense_args, ...) then run in the backend. The outputs are allocated here, as
// numpy arrays the op writes into with the GIL released, so results cross the edge without
// a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "detection_args.h"
#include "geometry_args.h"
#include "radedge/detection.h"
#include "radedge/errors.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw CudaError(std::string(op) +
                  " (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build time); " +
                  op + " runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
}  // namespace

size_t decode_dense_cuda_workspace_bytes(const DenseHeadView&, const NmsParams&) { no_cuda("decode_dense"); }
void decode_dense_cuda(const DenseHeadView&, const DenseDecodeParams&, const NmsParams&, const InputGeometry*,
                       const DetectionsView&, void*, size_t, CUstream_st*) {
  no_cuda("decode_dense");
}
void decode_dense_cuda_host(const DenseHeadView&, const DenseDecodeParams&, const NmsParams&, const InputGeometry*,
                            const DetectionsView&) {
  no_cuda("decode_dense");
}
size_t decode_boxes_cuda_workspace_bytes(const BoxesView&, const NmsParams&) { no_cuda("decode_boxes"); }
void decode_boxes_cuda(const BoxesView&, const BoxesDecodeParams&, const NmsParams&, const InputGeometry*,
                       const DetectionsView&, void*, size_t, CUstream_st*) {
  no_cuda("decode_boxes");
}
void decode_boxes_cuda_host(const BoxesView&, const BoxesDecodeParams&, const NmsParams&, const InputGeometry*,
                            const DetectionsView&) {
  no_cuda("decode_boxes");
}
size_t nms_cuda_workspace_bytes(int64_t, int64_t) { no_cuda("nms"); }
void nms_cuda(const NmsBoxesView&, float, int64_t, int32_t*, int32_t*, void*, size_t, CUstream_st*) { no_cuda("nms"); }
int64_t nms_cuda_host(const NmsBoxesView&, float, int64_t, int32_t*) { no_cuda("nms"); }
#endif

namespace {

std::string describe(const py::array& array) {
  std::ostringstream text;
  text << std::string(py::str(array.dtype())) << " with shape (";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text << (i ? ", " : "") << array.shape(i);
  text << (array.ndim() == 1 ? ",)" : ")");
  return text.str();
}

bool is_float32(const py::array& array) { return array.dtype().equal(py::dtype::of<float>()); }
bool is_float16(const py::array& array) { return array.dtype().equal(py::dtype("float16")); }

// A float32 or float16 C-contiguous array of `rank` dimensions.
binding::TensorArg tensor_arg(const py::array& array, const std::string& name, py::ssize_t rank, const char* layout) {
  binding::TensorArg tensor;
  if (array.ndim() == rank && is_float32(array)) {
    tensor.type = TensorType::kFloat32;
  } else if (array.ndim() == rank && is_float16(array)) {
    tensor.type = TensorType::kFloat16;
  } else {
    throw std::invalid_argument(name + " must be float32 or float16 " + layout + " in native byte order; got " +
                                describe(array));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw std::invalid_argument(name + " must be C-contiguous " + layout + "; got a strided view of " +
                                describe(array) + ". Pass numpy.ascontiguousarray(" + name + ")");
  }
  tensor.name = name;
  tensor.shape.assign(array.shape(), array.shape() + array.ndim());
  tensor.data = array.data();
  tensor.description = describe(array);
  return tensor;
}

std::vector<binding::TensorArg> tensor_args(const std::vector<py::array>& arrays, const char* name,
                                            const char* layout) {
  std::vector<binding::TensorArg> tensors;
  for (size_t l = 0; l < arrays.size(); ++l) {
    tensors.push_back(tensor_arg(arrays[l], name + ("[" + std::to_string(l) + "]"), 4, layout));
  }
  return tensors;
}

binding::DenseInput dense_input(const std::vector<py::array>& scores, const std::vector<py::array>& distances,
                                const std::optional<std::vector<py::array>>& centerness,
                                const std::vector<double>& strides, const std::string& scores_are,
                                const std::string& mode, const std::string& units, double cell_offset) {
  std::optional<std::vector<binding::TensorArg>> centerness_args;
  if (centerness) centerness_args = tensor_args(*centerness, "centerness", "[N, 1, h, w]");
  return binding::dense_input(tensor_args(scores, "scores", "[N, K, h, w]"),
                              tensor_args(distances, "distances", "[N, 4, h, w]"), centerness_args, strides,
                              scores_are, mode, units, cell_offset);
}

BoxesView boxes_input(const py::array& boxes, const py::array& scores) {
  return binding::boxes_input(tensor_arg(boxes, "boxes", 3, "[N, M, 4]"), tensor_arg(scores, "scores", 3, "[N, M, K]"));
}

// The op's output arrays, allocated with the GIL held.
struct Outputs {
  py::array_t<float> boxes, scores;
  py::array_t<int32_t> classes, valid;
  DetectionsView view;

  Outputs(int64_t batch, int64_t max_detections)
      : boxes({batch, max_detections, int64_t{4}}),
        scores({batch, max_detections}),
        classes({batch, max_detections}),
        valid(std::vector<int64_t>{batch}) {
    view.boxes = boxes.mutable_data();
    view.scores = scores.mutable_data();
    view.classes = classes.mutable_data();
    view.valid = valid.mutable_data();
    view.batch = batch;
    view.max_detections = max_detections;
  }
  py::tuple result() const { return py::make_tuple(boxes, scores, classes, valid); }
};

NmsBoxesView nms_input(const py::array& boxes, const py::array& scores, const std::optional<py::array>& classes) {
  if (boxes.ndim() != 2 || !is_float32(boxes) || boxes.shape(1) != 4) {
    throw std::invalid_argument("boxes must be float32 [M, 4] (x1 y1 x2 y2); got " + describe(boxes));
  }
  if (!(boxes.flags() & py::array::c_style)) {
    throw std::invalid_argument("boxes must be C-contiguous; got a strided view of " + describe(boxes) +
                                ". Pass numpy.ascontiguousarray(boxes)");
  }
  const py::ssize_t count = boxes.shape(0);
  if (scores.ndim() != 1 || !is_float32(scores) || scores.shape(0) != count) {
    throw std::invalid_argument("scores must be float32 [M] with M = " + std::to_string(count) +
                                " (one per box); got " + describe(scores));
  }
  if (!(scores.flags() & py::array::c_style)) {
    throw std::invalid_argument("scores must be contiguous; pass numpy.ascontiguousarray(scores)");
  }
  NmsBoxesView view;
  view.boxes = static_cast<const float*>(boxes.data());
  view.scores = static_cast<const float*>(scores.data());
  view.count = count;
  if (classes) {
    if (classes->ndim() != 1 || !classes->dtype().equal(py::dtype::of<int32_t>()) || classes->shape(0) != count) {
      throw std::invalid_argument("classes must be int32 [M] with M = " + std::to_string(count) +
                                  " (one per box), or None for class-agnostic NMS; got " + describe(*classes));
    }
    if (!(classes->flags() & py::array::c_style)) {
      throw std::invalid_argument("classes must be contiguous; pass numpy.ascontiguousarray(classes)");
    }
    view.classes = static_cast<const int32_t*>(classes->data());
  }
  return view;
}

const InputGeometry* geometry_pointer(const std::vector<InputGeometry>& geometries) {
  return geometries.empty() ? nullptr : geometries.data();
}

// One geometry per image, or none (an empty list) when `geometries` is None.
std::vector<InputGeometry> image_geometries(const std::optional<std::vector<py::object>>& geometries, int64_t batch) {
  return geometries ? binding::geometries_from(*geometries, batch, false) : std::vector<InputGeometry>{};
}

enum class Backend { kCpu, kCuda };

py::tuple run_dense(Backend backend, const std::vector<py::array>& scores, const std::vector<py::array>& distances,
                    const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
                    double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
                    bool class_agnostic, const std::string& scores_are, const std::string& mode,
                    const std::string& units, double cell_offset,
                    const std::optional<std::vector<py::object>>& geometries, int threads) {
  const binding::DenseInput input =
      dense_input(scores, distances, centerness, strides, scores_are, mode, units, cell_offset);
  const NmsParams params =
      binding::nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
  const std::vector<InputGeometry> source = image_geometries(geometries, input.head.batch);
  Outputs out(input.head.batch, params.max_detections);
  {
    py::gil_scoped_release release;
    if (backend == Backend::kCuda) {
      decode_dense_cuda_host(input.head, input.decode, params, geometry_pointer(source), out.view);
    } else {
      decode_dense_cpu(input.head, input.decode, params, geometry_pointer(source), out.view, threads);
    }
  }
  return out.result();
}

py::tuple run_boxes(Backend backend, const py::array& boxes, const py::array& scores, double score_threshold,
                    double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic,
                    const std::string& scores_are, const std::string& format,
                    const std::optional<std::vector<py::object>>& geometries, int threads) {
  const BoxesView input = boxes_input(boxes, scores);
  BoxesDecodeParams decode;
  decode.scores = binding::score_kind(scores_are);
  decode.format = binding::box_format(format);
  const NmsParams params =
      binding::nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
  const std::vector<InputGeometry> source = image_geometries(geometries, input.batch);
  Outputs out(input.batch, params.max_detections);
  {
    py::gil_scoped_release release;
    if (backend == Backend::kCuda) {
      decode_boxes_cuda_host(input, decode, params, geometry_pointer(source), out.view);
    } else {
      decode_boxes_cpu(input, decode, params, geometry_pointer(source), out.view, threads);
    }
  }
  return out.result();
}

py::array_t<int32_t> run_nms(Backend backend, const py::array& boxes, const py::array& scores,
                             const std::optional<py::array>& classes, double iou_threshold, int64_t max_detections,
                             int threads) {
  const NmsBoxesView input = nms_input(boxes, scores, classes);
  const float threshold = static_cast<float>(iou_threshold);
  // Checked before keep is allocated, so an absurd max_detections is a ValueError.
  check_nms_args(input, threshold, max_detections);
  std::vector<int32_t> keep(static_cast<size_t>(max_detections));
  int64_t count = 0;
  {
    py::gil_scoped_release release;
    count = backend == Backend::kCuda ? nms_cuda_host(input, threshold, max_detections, keep.data())
                                      : nms_cpu(input, threshold, max_detections, keep.data(), threads);
  }
  py::array_t<int32_t> result(std::vector<int64_t>{count});
  std::copy(keep.begin(), keep.begin() + count, result.mutable_data());
  return result;
}

// What the host-array bindings return.
const char* kDetectionsReturned =
    " Returns (boxes float32 [N, max_detections, 4], scores float32 [N, max_detections], classes int32 "
    "[N, max_detections], valid int32 [N]); slots past valid[n] are zero.";
const char* kKeepReturned = " Returns the kept indices, int32 [<= max_detections], in that order.";

const char* kCudaHostDoc =
    " Runs the CUDA kernels on host arrays: copies them to the current CUDA device, runs, waits and copies the "
    "results back. Raises RuntimeError naming the CUDA error, or saying that the module was built without CUDA.";

}  // namespace

void bind_detection(py::module_& m) {
  m.attr("MAX_NMS_CANDIDATES") = kMaxNmsCandidates;

  m.def(
      "decode_dense_cpu",
      [](const std::vector<py::array>& scores, const std::vector<py::array>& distances,
         const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
         double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
         bool class_agnostic, const std::string& scores_are, const std::string& centerness_mode,
         const std::string& distance_units, double cell_offset,
         const std::optional<std::vector<py::object>>& geometries, int threads) {
        return run_dense(Backend::kCpu, scores, distances, centerness, strides, score_threshold, iou_threshold,
                         pre_nms_top_k, max_detections, class_agnostic, scores_are, centerness_mode, distance_units,
                         cell_offset, geometries, threads);
      },
      py::arg("scores"), py::arg("distances"), py::arg("centerness"), py::arg("strides"), py::kw_only(),
      py::arg("score_threshold"), py::arg("iou_threshold"), py::arg("pre_nms_top_k"), py::arg("max_detections"),
      py::arg("class_agnostic") = false, py::arg("scores_are") = "logits", py::arg("centerness_mode") = "sqrt",
      py::arg("distance_units") = "stride", py::arg("cell_offset") = 0.5, py::arg("geometries") = py::none(),
      py::arg("threads") = 0,
      (std::string(binding::kDenseDoc) + kDetectionsReturned + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "decode_dense_cuda_host",
      [](const std::vector<py::array>& scores, const std::vector<py::array>& distances,
         const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
         double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
         bool class_agnostic, const std::string& scores_are, const std::string& centerness_mode,
         const std::string& distance_units, double cell_offset,
         const std::optional<std::vector<py::object>>& geometries) {
        return run_dense(Backend::kCuda, scores, distances, centerness, strides, score_threshold, iou_threshold,
                         pre_nms_top_k, max_detections, class_agnostic, scores_are, centerness_mode, distance_units,
                         cell_offset, geometries, 0);
      },
      py::arg("scores"), py::arg("distances"), py::arg("centerness"), py::arg("strides"), py::kw_only(),
      py::arg("score_threshold"), py::arg("iou_threshold"), py::arg("pre_nms_top_k"), py::arg("max_detections"),
      py::arg("class_agnostic") = false, py::arg("scores_are") = "logits", py::arg("centerness_mode") = "sqrt",
      py::arg("distance_units") = "stride", py::arg("cell_offset") = 0.5, py::arg("geometries") = py::none(),
      (std::string(binding::kDenseDoc) + kDetectionsReturned + kCudaHostDoc).c_str());

  m.def(
      "decode_boxes_cpu",
      [](const py::array& boxes, const py::array& scores, double score_threshold, double iou_threshold,
         int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic, const std::string& scores_are,
         const std::string& box_format, const std::optional<std::vector<py::object>>& geometries, int threads) {
        return run_boxes(Backend::kCpu, boxes, scores, score_threshold, iou_threshold, pre_nms_top_k, max_detections,
                         class_agnostic, scores_are, box_format, geometries, threads);
      },
      py::arg("boxes"), py::arg("scores"), py::kw_only(), py::arg("score_threshold"), py::arg("iou_threshold"),
      py::arg("pre_nms_top_k"), py::arg("max_detections"), py::arg("class_agnostic") = false,
      py::arg("scores_are") = "probabilities", py::arg("box_format") = "xyxy", py::arg("geometries") = py::none(),
      py::arg("threads") = 0,
      (std::string(binding::kBoxesDoc) + kDetectionsReturned + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "decode_boxes_cuda_host",
      [](const py::array& boxes, const py::array& scores, double score_threshold, double iou_threshold,
         int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic, const std::string& scores_are,
         const std::string& box_format, const std::optional<std::vector<py::object>>& geometries) {
        return run_boxes(Backend::kCuda, boxes, scores, score_threshold, iou_threshold, pre_nms_top_k,
                         max_detections, class_agnostic, scores_are, box_format, geometries, 0);
      },
      py::arg("boxes"), py::arg("scores"), py::kw_only(), py::arg("score_threshold"), py::arg("iou_threshold"),
      py::arg("pre_nms_top_k"), py::arg("max_detections"), py::arg("class_agnostic") = false,
      py::arg("scores_are") = "probabilities", py::arg("box_format") = "xyxy", py::arg("geometries") = py::none(),
      (std::string(binding::kBoxesDoc) + kDetectionsReturned + kCudaHostDoc).c_str());

  m.def(
      "nms_cpu",
      [](const py::array& boxes, const py::array& scores, const std::optional<py::array>& classes,
         double iou_threshold, int64_t max_detections, int threads) {
        return run_nms(Backend::kCpu, boxes, scores, classes, iou_threshold, max_detections, threads);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::kw_only(), py::arg("iou_threshold"),
      py::arg("max_detections"), py::arg("threads") = 0,
      (std::string(binding::kNmsDoc) + kKeepReturned + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "nms_cuda_host",
      [](const py::array& boxes, const py::array& scores, const std::optional<py::array>& classes,
         double iou_threshold, int64_t max_detections) {
        return run_nms(Backend::kCuda, boxes, scores, classes, iou_threshold, max_detections, 0);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::kw_only(), py::arg("iou_threshold"),
      py::arg("max_detections"), (std::string(binding::kNmsDoc) + kKeepReturned + kCudaHostDoc).c_str());
}

}  // namespace radedge
