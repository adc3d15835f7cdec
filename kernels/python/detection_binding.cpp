// Bindings of the detection ops (decode_dense, decode_boxes, nms): numpy arrays are checked
// here (dtype, rank, shapes across levels, layout) and turned into the views of
// radedge/detection.h; the ops' own checks (check_decode_dense_args, ...) then run in the
// backend. The outputs are allocated here, as numpy arrays the op writes into with the
// GIL released, so results cross the edge without a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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
void decode_dense_cuda(const DenseHeadView&, const DenseDecodeParams&, const NmsParams&, const SourceMapping*,
                       const DetectionsView&, void*, size_t, CUstream_st*) {
  no_cuda("decode_dense");
}
void decode_dense_cuda_host(const DenseHeadView&, const DenseDecodeParams&, const NmsParams&, const SourceMapping*,
                            const DetectionsView&) {
  no_cuda("decode_dense");
}
size_t decode_boxes_cuda_workspace_bytes(const BoxesView&, const NmsParams&) { no_cuda("decode_boxes"); }
void decode_boxes_cuda(const BoxesView&, const BoxesDecodeParams&, const NmsParams&, const SourceMapping*,
                       const DetectionsView&, void*, size_t, CUstream_st*) {
  no_cuda("decode_boxes");
}
void decode_boxes_cuda_host(const BoxesView&, const BoxesDecodeParams&, const NmsParams&, const SourceMapping*,
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
TensorType tensor_type(const py::array& array, const std::string& name, py::ssize_t rank, const char* layout) {
  TensorType type;
  if (array.ndim() == rank && is_float32(array)) {
    type = TensorType::kFloat32;
  } else if (array.ndim() == rank && is_float16(array)) {
    type = TensorType::kFloat16;
  } else {
    throw std::invalid_argument(name + " must be float32 or float16 " + layout + " in native byte order; got " +
                                describe(array));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw std::invalid_argument(name + " must be C-contiguous " + layout + "; got a strided view of " +
                                describe(array) + ". Pass numpy.ascontiguousarray(" + name + ")");
  }
  return type;
}

void require_same_type(TensorType type, TensorType first, const std::string& name, const py::array& array,
                       const std::string& first_name) {
  if (type != first) {
    throw std::invalid_argument(name + " is " + describe(array) + " but " + first_name + " is " +
                                (first == TensorType::kFloat16 ? "float16" : "float32") +
                                "; every tensor of one call must have the same dtype (cast them to one)");
  }
}

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::ostringstream text;
  text << "(";
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? ", " : "") << shape[i];
  text << ")";
  return text.str();
}

void require_shape(const py::array& array, const std::string& name, const std::vector<py::ssize_t>& expected,
                   const std::string& why) {
  for (size_t i = 0; i < expected.size(); ++i) {
    if (array.shape(static_cast<py::ssize_t>(i)) != expected[i]) {
      throw std::invalid_argument(name + " must have shape " + shape_text(expected) + " (" + why + "); got " +
                                  describe(array));
    }
  }
}

ScoreKind score_kind(const std::string& scores) {
  if (scores == "logits") return ScoreKind::kLogits;
  if (scores == "probabilities") return ScoreKind::kProbabilities;
  throw std::invalid_argument("scores_are must be 'logits' (the op applies a sigmoid) or 'probabilities'; got '" +
                              scores + "'");
}

CenternessMode centerness_mode(const std::string& mode) {
  if (mode == "sqrt") return CenternessMode::kGeometricMean;
  if (mode == "product") return CenternessMode::kProduct;
  throw std::invalid_argument("centerness_mode must be 'sqrt' (score = sqrt(cls * ctr), FCOS) or 'product' "
                              "(score = cls * ctr); got '" + mode + "'");
}

DistanceUnits distance_units(const std::string& units) {
  if (units == "stride") return DistanceUnits::kStrides;
  if (units == "pixels") return DistanceUnits::kPixels;
  throw std::invalid_argument("distance_units must be 'stride' (multiples of the level's stride) or 'pixels' "
                              "(model-input pixels); got '" + units + "'");
}

BoxFormat box_format(const std::string& format) {
  if (format == "xyxy") return BoxFormat::kCorners;
  if (format == "cxcywh") return BoxFormat::kCentreSize;
  throw std::invalid_argument("box_format must be 'xyxy' (x1 y1 x2 y2) or 'cxcywh' (centre x, centre y, width, "
                              "height); got '" + format + "'");
}

// Thresholds arrive as Python floats; NaN and out-of-range values are refused by
// check_nms_params after the conversion, which keeps NaN a NaN.
NmsParams nms_params(double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
                     bool class_agnostic) {
  NmsParams params;
  params.score_threshold = static_cast<float>(score_threshold);
  params.iou_threshold = static_cast<float>(iou_threshold);
  params.pre_nms_top_k = pre_nms_top_k;
  params.max_detections = max_detections;
  params.class_agnostic = class_agnostic;
  check_nms_params(params);
  return params;
}

// One SourceMapping per image from dicts with offset_x, offset_y, scale_x, scale_y,
// source_columns, source_rows and optionally crop_x, crop_y (pixels; scales are content /
// source). Unknown keys are refused so that a misspelt crop is not silently zero.
std::vector<SourceMapping> source_mappings(const std::optional<std::vector<py::dict>>& mappings, int64_t batch) {
  std::vector<SourceMapping> result;
  if (!mappings) return result;
  if (static_cast<int64_t>(mappings->size()) != batch) {
    throw std::invalid_argument("mappings must hold one source mapping per image (" + std::to_string(batch) +
                                "); got " + std::to_string(mappings->size()));
  }
  static const std::set<std::string> required = {"offset_x", "offset_y", "scale_x", "scale_y", "source_columns",
                                                 "source_rows"};
  static const std::set<std::string> optional = {"crop_x", "crop_y"};
  for (size_t n = 0; n < mappings->size(); ++n) {
    const py::dict& d = (*mappings)[n];
    for (const auto& item : d) {
      const std::string key = py::str(item.first);
      if (!required.count(key) && !optional.count(key)) {
        throw std::invalid_argument("mappings[" + std::to_string(n) + "] has an unknown key '" + key +
                                    "'; expected offset_x, offset_y, scale_x, scale_y, source_columns, source_rows "
                                    "and optionally crop_x, crop_y");
      }
    }
    const auto get = [&](const char* key, bool needed) {
      if (!d.contains(key)) {
        if (needed) {
          throw std::invalid_argument("mappings[" + std::to_string(n) + "] lacks '" + key +
                                      "'; expected offset_x, offset_y, scale_x, scale_y, source_columns, source_rows "
                                      "and optionally crop_x, crop_y");
        }
        return 0.0;
      }
      return py::cast<double>(d[key]);
    };
    SourceMapping m;
    m.offset_x = get("offset_x", true);
    m.offset_y = get("offset_y", true);
    m.scale_x = get("scale_x", true);
    m.scale_y = get("scale_y", true);
    m.source_columns = get("source_columns", true);
    m.source_rows = get("source_rows", true);
    m.crop_x = get("crop_x", false);
    m.crop_y = get("crop_y", false);
    result.push_back(m);
  }
  check_source_mappings(result.data(), batch);
  return result;
}

struct DenseInput {
  DenseHeadView head;
  DenseDecodeParams decode;
};

DenseInput dense_input(const std::vector<py::array>& scores, const std::vector<py::array>& distances,
                       const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
                       const std::string& scores_are, const std::string& mode, const std::string& units,
                       double cell_offset) {
  DenseInput input;
  const size_t levels = scores.size();
  if (levels == 0) throw std::invalid_argument("scores must hold one array per level; got none");
  if (distances.size() != levels || strides.size() != levels || (centerness && centerness->size() != levels)) {
    throw std::invalid_argument("scores, distances" + std::string(centerness ? ", centerness" : "") +
                                " and strides must each hold one entry per level; got " + std::to_string(levels) +
                                " scores, " + std::to_string(distances.size()) + " distances, " +
                                (centerness ? std::to_string(centerness->size()) + " centerness, " : "") +
                                std::to_string(strides.size()) + " strides");
  }
  const TensorType type = tensor_type(scores[0], "scores[0]", 4, "[N, K, h, w]");
  const py::ssize_t batch = scores[0].shape(0), classes = scores[0].shape(1);
  for (size_t l = 0; l < levels; ++l) {
    const std::string index = "[" + std::to_string(l) + "]";
    const py::array& s = scores[l];
    require_same_type(tensor_type(s, "scores" + index, 4, "[N, K, h, w]"), type, "scores" + index, s, "scores[0]");
    require_shape(s, "scores" + index, {batch, classes, s.shape(2), s.shape(3)},
                  "every level has the batch and classes of scores[0]");
    const py::array& d = distances[l];
    require_same_type(tensor_type(d, "distances" + index, 4, "[N, 4, h, w]"), type, "distances" + index, d,
                      "scores[0]");
    require_shape(d, "distances" + index, {batch, 4, s.shape(2), s.shape(3)},
                  "left, top, right, bottom for every cell of scores" + index);
    DenseLevelView level;
    level.scores = s.data();
    level.distances = d.data();
    level.height = s.shape(2);
    level.width = s.shape(3);
    level.stride = static_cast<float>(strides[l]);
    if (centerness) {
      const py::array& c = (*centerness)[l];
      require_same_type(tensor_type(c, "centerness" + index, 4, "[N, 1, h, w]"), type, "centerness" + index, c,
                        "scores[0]");
      require_shape(c, "centerness" + index, {batch, 1, s.shape(2), s.shape(3)},
                    "one value for every cell of scores" + index);
      level.centerness = c.data();
    }
    input.head.levels.push_back(level);
  }
  input.head.type = type;
  input.head.batch = batch;
  input.head.classes = classes;
  input.decode.scores = score_kind(scores_are);
  input.decode.centerness = centerness_mode(mode);
  input.decode.distance_units = distance_units(units);
  input.decode.cell_offset = static_cast<float>(cell_offset);
  return input;
}

BoxesView boxes_input(const py::array& boxes, const py::array& scores) {
  BoxesView view;
  view.type = tensor_type(boxes, "boxes", 3, "[N, M, 4]");
  require_same_type(tensor_type(scores, "scores", 3, "[N, M, K]"), view.type, "scores", scores, "boxes");
  require_shape(boxes, "boxes", {boxes.shape(0), boxes.shape(1), 4}, "four coordinates per box");
  require_shape(scores, "scores", {boxes.shape(0), boxes.shape(1), scores.shape(2)},
                "one score per box and class, for the boxes of boxes");
  view.boxes = boxes.data();
  view.scores = scores.data();
  view.batch = boxes.shape(0);
  view.count = boxes.shape(1);
  view.classes = scores.shape(2);
  return view;
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

const SourceMapping* mapping_pointer(const std::vector<SourceMapping>& mappings) {
  return mappings.empty() ? nullptr : mappings.data();
}

enum class Backend { kCpu, kCuda };

py::tuple run_dense(Backend backend, const std::vector<py::array>& scores, const std::vector<py::array>& distances,
                    const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
                    double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
                    bool class_agnostic, const std::string& scores_are, const std::string& mode,
                    const std::string& units, double cell_offset,
                    const std::optional<std::vector<py::dict>>& mappings, int threads) {
  const DenseInput input = dense_input(scores, distances, centerness, strides, scores_are, mode, units, cell_offset);
  const NmsParams params = nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
  const std::vector<SourceMapping> source = source_mappings(mappings, input.head.batch);
  Outputs out(input.head.batch, params.max_detections);
  {
    py::gil_scoped_release release;
    if (backend == Backend::kCuda) {
      decode_dense_cuda_host(input.head, input.decode, params, mapping_pointer(source), out.view);
    } else {
      decode_dense_cpu(input.head, input.decode, params, mapping_pointer(source), out.view, threads);
    }
  }
  return out.result();
}

py::tuple run_boxes(Backend backend, const py::array& boxes, const py::array& scores, double score_threshold,
                    double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic,
                    const std::string& scores_are, const std::string& format,
                    const std::optional<std::vector<py::dict>>& mappings, int threads) {
  const BoxesView input = boxes_input(boxes, scores);
  BoxesDecodeParams decode;
  decode.scores = score_kind(scores_are);
  decode.format = box_format(format);
  const NmsParams params = nms_params(score_threshold, iou_threshold, pre_nms_top_k, max_detections, class_agnostic);
  const std::vector<SourceMapping> source = source_mappings(mappings, input.batch);
  Outputs out(input.batch, params.max_detections);
  {
    py::gil_scoped_release release;
    if (backend == Backend::kCuda) {
      decode_boxes_cuda_host(input, decode, params, mapping_pointer(source), out.view);
    } else {
      decode_boxes_cpu(input, decode, params, mapping_pointer(source), out.view, threads);
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

const char* kDenseDoc =
    "Dense anchor-free detection post-processing (FCOS / CenterNet style). Per level l: scores[l] "
    "float32/float16 [N, K, h_l, w_l] (logits, or probabilities with scores_are='probabilities'), distances[l] "
    "[N, 4, h_l, w_l] (left, top, right, bottom from the cell centre ((x + cell_offset) * stride, (y + "
    "cell_offset) * stride), in strides or pixels), optional centerness[l] [N, 1, h_l, w_l] combined as "
    "'sqrt' (sqrt(cls * ctr)) or 'product'. Then score > score_threshold, the pre_nms_top_k best per image, "
    "greedy NMS (IoU > iou_threshold suppresses; per class unless class_agnostic), at most max_detections, "
    "mapped to source pixels through mappings (one dict per image, or None: model-input pixels, unclipped). "
    "Returns (boxes float32 [N, max_detections, 4], scores float32 [N, max_detections], classes int32 "
    "[N, max_detections], valid int32 [N]); slots past valid[n] are zero.";

const char* kBoxesDoc =
    "Post-processing of decoded boxes: boxes float32/float16 [N, M, 4] ('xyxy' or 'cxcywh', model-input "
    "pixels) and scores [N, M, K] (probabilities, or logits with scores_are='logits'); candidates are (box, "
    "class) pairs. Then the same threshold, top-k, NMS, mapping and outputs as decode_dense.";

const char* kNmsDoc =
    "Greedy NMS of one image: boxes float32 [M, 4] (x1 y1 x2 y2), scores float32 [M], classes int32 [M] or None "
    "(class-agnostic). Order: score descending, ties to the lower index; IoU > iou_threshold suppresses. "
    "Returns the kept indices, int32 [<= max_detections], in that order.";

const char* kCudaHostDoc =
    " Runs the CUDA kernels on host arrays: copies them to the current CUDA device, runs, waits and copies the "
    "results back. Raises RuntimeError naming the CUDA error, or saying that the module was built without CUDA.";

}  // namespace

void bind_detection(py::module_& m) {
  m.def(
      "decode_dense_cpu",
      [](const std::vector<py::array>& scores, const std::vector<py::array>& distances,
         const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
         double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
         bool class_agnostic, const std::string& scores_are, const std::string& centerness_mode,
         const std::string& distance_units, double cell_offset, const std::optional<std::vector<py::dict>>& mappings,
         int threads) {
        return run_dense(Backend::kCpu, scores, distances, centerness, strides, score_threshold, iou_threshold,
                         pre_nms_top_k, max_detections, class_agnostic, scores_are, centerness_mode, distance_units,
                         cell_offset, mappings, threads);
      },
      py::arg("scores"), py::arg("distances"), py::arg("centerness"), py::arg("strides"), py::kw_only(),
      py::arg("score_threshold"), py::arg("iou_threshold"), py::arg("pre_nms_top_k"), py::arg("max_detections"),
      py::arg("class_agnostic") = false, py::arg("scores_are") = "logits", py::arg("centerness_mode") = "sqrt",
      py::arg("distance_units") = "stride", py::arg("cell_offset") = 0.5, py::arg("mappings") = py::none(),
      py::arg("threads") = 0, (std::string(kDenseDoc) + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "decode_dense_cuda_host",
      [](const std::vector<py::array>& scores, const std::vector<py::array>& distances,
         const std::optional<std::vector<py::array>>& centerness, const std::vector<double>& strides,
         double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
         bool class_agnostic, const std::string& scores_are, const std::string& centerness_mode,
         const std::string& distance_units, double cell_offset,
         const std::optional<std::vector<py::dict>>& mappings) {
        return run_dense(Backend::kCuda, scores, distances, centerness, strides, score_threshold, iou_threshold,
                         pre_nms_top_k, max_detections, class_agnostic, scores_are, centerness_mode, distance_units,
                         cell_offset, mappings, 0);
      },
      py::arg("scores"), py::arg("distances"), py::arg("centerness"), py::arg("strides"), py::kw_only(),
      py::arg("score_threshold"), py::arg("iou_threshold"), py::arg("pre_nms_top_k"), py::arg("max_detections"),
      py::arg("class_agnostic") = false, py::arg("scores_are") = "logits", py::arg("centerness_mode") = "sqrt",
      py::arg("distance_units") = "stride", py::arg("cell_offset") = 0.5, py::arg("mappings") = py::none(),
      (std::string(kDenseDoc) + kCudaHostDoc).c_str());

  m.def(
      "decode_boxes_cpu",
      [](const py::array& boxes, const py::array& scores, double score_threshold, double iou_threshold,
         int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic, const std::string& scores_are,
         const std::string& box_format, const std::optional<std::vector<py::dict>>& mappings, int threads) {
        return run_boxes(Backend::kCpu, boxes, scores, score_threshold, iou_threshold, pre_nms_top_k, max_detections,
                         class_agnostic, scores_are, box_format, mappings, threads);
      },
      py::arg("boxes"), py::arg("scores"), py::kw_only(), py::arg("score_threshold"), py::arg("iou_threshold"),
      py::arg("pre_nms_top_k"), py::arg("max_detections"), py::arg("class_agnostic") = false,
      py::arg("scores_are") = "probabilities", py::arg("box_format") = "xyxy", py::arg("mappings") = py::none(),
      py::arg("threads") = 0, (std::string(kBoxesDoc) + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "decode_boxes_cuda_host",
      [](const py::array& boxes, const py::array& scores, double score_threshold, double iou_threshold,
         int64_t pre_nms_top_k, int64_t max_detections, bool class_agnostic, const std::string& scores_are,
         const std::string& box_format, const std::optional<std::vector<py::dict>>& mappings) {
        return run_boxes(Backend::kCuda, boxes, scores, score_threshold, iou_threshold, pre_nms_top_k,
                         max_detections, class_agnostic, scores_are, box_format, mappings, 0);
      },
      py::arg("boxes"), py::arg("scores"), py::kw_only(), py::arg("score_threshold"), py::arg("iou_threshold"),
      py::arg("pre_nms_top_k"), py::arg("max_detections"), py::arg("class_agnostic") = false,
      py::arg("scores_are") = "probabilities", py::arg("box_format") = "xyxy", py::arg("mappings") = py::none(),
      (std::string(kBoxesDoc) + kCudaHostDoc).c_str());

  m.def(
      "nms_cpu",
      [](const py::array& boxes, const py::array& scores, const std::optional<py::array>& classes,
         double iou_threshold, int64_t max_detections, int threads) {
        return run_nms(Backend::kCpu, boxes, scores, classes, iou_threshold, max_detections, threads);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::kw_only(), py::arg("iou_threshold"),
      py::arg("max_detections"), py::arg("threads") = 0,
      (std::string(kNmsDoc) + " Runs on CPU threads (0: the default count).").c_str());

  m.def(
      "nms_cuda_host",
      [](const py::array& boxes, const py::array& scores, const std::optional<py::array>& classes,
         double iou_threshold, int64_t max_detections) {
        return run_nms(Backend::kCuda, boxes, scores, classes, iou_threshold, max_detections, 0);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::kw_only(), py::arg("iou_threshold"),
      py::arg("max_detections"), (std::string(kNmsDoc) + kCudaHostDoc).c_str());
}

}  // namespace radedge
