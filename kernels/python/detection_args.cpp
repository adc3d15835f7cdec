// See detection_args.h.
#include "detection_args.h"

#include <pybind11/stl.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace radedge::binding {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream text;
  text << "(";
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? ", " : "") << shape[i];
  text << ")";
  return text.str();
}

void require_same_type(const TensorArg& tensor, const TensorArg& first) {
  if (tensor.type != first.type) {
    throw std::invalid_argument(tensor.name + " is " + tensor.description + " but " + first.name + " is " +
                                (first.type == TensorType::kFloat16 ? "float16" : "float32") +
                                "; every tensor of one call must have the same dtype (cast them to one)");
  }
}

// The caller has checked the rank.
void require_shape(const TensorArg& tensor, const std::vector<int64_t>& expected, const std::string& why) {
  for (size_t i = 0; i < expected.size(); ++i) {
    if (tensor.shape[i] != expected[i]) {
      throw std::invalid_argument(tensor.name + " must have shape " + shape_text(expected) + " (" + why + "); got " +
                                  tensor.description);
    }
  }
}

}  // namespace

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

DenseInput dense_input(const std::vector<TensorArg>& scores, const std::vector<TensorArg>& distances,
                       const std::optional<std::vector<TensorArg>>& centerness, const std::vector<double>& strides,
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
  const TensorArg& first = scores[0];
  const int64_t batch = first.shape[0], classes = first.shape[1];
  for (size_t l = 0; l < levels; ++l) {
    const std::string index = "[" + std::to_string(l) + "]";
    const TensorArg& s = scores[l];
    require_same_type(s, first);
    require_shape(s, {batch, classes, s.shape[2], s.shape[3]}, "every level has the batch and classes of scores[0]");
    const TensorArg& d = distances[l];
    require_same_type(d, first);
    require_shape(d, {batch, 4, s.shape[2], s.shape[3]}, "left, top, right, bottom for every cell of scores" + index);
    DenseLevelView level;
    level.scores = s.data;
    level.distances = d.data;
    level.height = s.shape[2];
    level.width = s.shape[3];
    level.stride = static_cast<float>(strides[l]);
    if (centerness) {
      const TensorArg& c = (*centerness)[l];
      require_same_type(c, first);
      require_shape(c, {batch, 1, s.shape[2], s.shape[3]}, "one value for every cell of scores" + index);
      level.centerness = c.data;
    }
    input.head.levels.push_back(level);
  }
  input.head.type = first.type;
  input.head.batch = batch;
  input.head.classes = classes;
  input.decode.scores = score_kind(scores_are);
  input.decode.centerness = centerness_mode(mode);
  input.decode.distance_units = distance_units(units);
  input.decode.cell_offset = static_cast<float>(cell_offset);
  return input;
}

BoxesView boxes_input(const TensorArg& boxes, const TensorArg& scores) {
  require_same_type(scores, boxes);
  require_shape(boxes, {boxes.shape[0], boxes.shape[1], 4}, "four coordinates per box");
  require_shape(scores, {boxes.shape[0], boxes.shape[1], scores.shape[2]},
                "one score per box and class, for the boxes of boxes");
  BoxesView view;
  view.type = boxes.type;
  view.boxes = boxes.data;
  view.scores = scores.data;
  view.batch = boxes.shape[0];
  view.count = boxes.shape[1];
  view.classes = scores.shape[2];
  return view;
}

const char* const kDenseDoc =
    "Dense anchor-free detection post-processing (FCOS / CenterNet style). Per level l: scores[l] "
    "float32/float16 [N, K, h_l, w_l] (logits, or probabilities with scores_are='probabilities'), distances[l] "
    "[N, 4, h_l, w_l] (left, top, right, bottom from the cell centre ((x + cell_offset) * stride, (y + "
    "cell_offset) * stride), in strides or pixels), optional centerness[l] [N, 1, h_l, w_l] combined as "
    "'sqrt' (sqrt(cls * ctr)) or 'product'. Then score > score_threshold, the pre_nms_top_k best per image, "
    "greedy NMS (IoU > iou_threshold suppresses; per class unless class_agnostic), at most max_detections, "
    "mapped to source pixels through geometries (one per image, or None: model-input pixels, unclipped).";

const char* const kBoxesDoc =
    "Post-processing of decoded boxes: boxes float32/float16 [N, M, 4] ('xyxy' or 'cxcywh', model-input "
    "pixels) and scores [N, M, K] (probabilities, or logits with scores_are='logits'); candidates are (box, "
    "class) pairs. Then the same threshold, top-k, NMS and map to source pixels as decode_dense.";

const char* const kNmsDoc =
    "Greedy NMS of one image: boxes float32 [M, 4] (x1 y1 x2 y2), scores float32 [M], classes int32 [M] or None "
    "(class-agnostic). Order: score descending, ties to the lower index; IoU > iou_threshold suppresses.";

}  // namespace radedge::binding
