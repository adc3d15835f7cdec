// The detection ops' Python-facing arguments, shared by the host-array bindings
// (detection_binding.cpp) and the zero-copy CUDA-array bindings (detection_cuda_binding.cpp):
// the option strings, the NMS parameters, and the checks that the
// tensors of one call agree with each other (dtype, shapes across levels), which the ops'
// own check_* functions cannot see because their views carry one batch and class count.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "radedge/detection.h"

namespace radedge::binding {

namespace py = pybind11;

// One float32 / float16 C-contiguous tensor argument, from a numpy array or a CUDA array,
// once its dtype, rank and layout have been accepted.
struct TensorArg {
  std::string name;         // "scores[1]", for messages
  TensorType type = TensorType::kFloat32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::string description;  // what arrived, for messages: "float32 with shape (1, 2, 4, 5)"
};

ScoreKind score_kind(const std::string& scores);
CenternessMode centerness_mode(const std::string& mode);
DistanceUnits distance_units(const std::string& units);
BoxFormat box_format(const std::string& format);

// Thresholds arrive as Python floats; NaN and out-of-range values are refused by
// check_nms_params after the conversion, which keeps NaN a NaN.
NmsParams nms_params(double score_threshold, double iou_threshold, int64_t pre_nms_top_k, int64_t max_detections,
                     bool class_agnostic);

// The per-level arguments of decode_dense checked against each other: one entry per level
// in every list, one dtype, every level with the batch and classes of scores[0], distances
// and centerness covering the cells of their level.
struct DenseInput {
  DenseHeadView head;
  DenseDecodeParams decode;
};
DenseInput dense_input(const std::vector<TensorArg>& scores, const std::vector<TensorArg>& distances,
                       const std::optional<std::vector<TensorArg>>& centerness, const std::vector<double>& strides,
                       const std::string& scores_are, const std::string& mode, const std::string& units,
                       double cell_offset);

// boxes [N, M, 4] and scores [N, M, K] of one dtype, for the same boxes.
BoxesView boxes_input(const TensorArg& boxes, const TensorArg& scores);

// The docstrings the host and device bindings share.
extern const char* const kDenseDoc;
extern const char* const kBoxesDoc;
extern const char* const kNmsDoc;

}  // namespace radedge::binding
