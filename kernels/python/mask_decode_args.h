// The mask decode op's Python-facing arguments, shared by the host-array bindings
// (mask_decode_binding.cpp) and the zero-copy CUDA-array binding (mask_decode_cuda_binding.cpp):
// the activation, thresholds, geometry and pixel spacing, and the statistics handed back.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/mask_decode.h"

namespace radedge::binding {

namespace py = pybind11;

inline Activation activation_from(const std::string& activation) {
  if (activation == "sigmoid") return Activation::kSigmoid;
  if (activation == "softmax") return Activation::kSoftmax;
  throw std::invalid_argument("activation must be 'sigmoid' or 'softmax'; got '" + activation + "'");
}

// The geometry keywords every mask decode binding takes, in this order.
struct GeometryArguments {
  int64_t source_rows, source_columns, crop_x, crop_y, crop_width, crop_height, offset_x, offset_y, content_width,
      content_height, input_height, input_width;
};

inline MaskGeometry geometry_from(const GeometryArguments& a) {
  MaskGeometry g;
  g.source_rows = a.source_rows;
  g.source_columns = a.source_columns;
  g.crop_x = a.crop_x;
  g.crop_y = a.crop_y;
  g.crop_width = a.crop_width;
  g.crop_height = a.crop_height;
  g.offset_x = a.offset_x;
  g.offset_y = a.offset_y;
  g.content_width = a.content_width;
  g.content_height = a.content_height;
  g.input_height = a.input_height;
  g.input_width = a.input_width;
  return g;
}

inline MaskDecodeParams mask_params_from(const std::string& activation, const std::vector<double>& thresholds,
                                         const MaskGeometry& geometry, double row_spacing_mm,
                                         double column_spacing_mm) {
  MaskDecodeParams params;
  params.activation = activation_from(activation);
  params.thresholds = thresholds;
  params.geometry = geometry;
  params.row_spacing_mm = row_spacing_mm;
  params.column_spacing_mm = column_spacing_mm;
  return params;
}

inline py::object or_none(double value) {
  return std::isnan(value) ? py::none() : py::object(py::float_(value));
}

// [{'pixel_count', 'bbox', 'centroid', 'area_mm2'}, ...] for labels 1, 2, ...
inline py::list label_stats_list(const std::vector<LabelStats>& labels) {
  py::list list;
  for (const LabelStats& s : labels) {
    py::dict d;
    d["pixel_count"] = s.pixel_count;
    if (s.pixel_count > 0) {
      d["bbox"] = py::make_tuple(s.bbox[0], s.bbox[1], s.bbox[2], s.bbox[3]);
      d["centroid"] = py::make_tuple(s.centroid[0], s.centroid[1]);
    } else {
      d["bbox"] = py::none();
      d["centroid"] = py::none();
    }
    d["area_mm2"] = or_none(s.area_mm2);
    list.append(d);
  }
  return list;
}

constexpr const char* kMaskGeometryDoc =
    "Geometry (whole pixels): source_rows x source_columns is the source image; crop_x, crop_y, crop_width, "
    "crop_height the part of it that was resized (0, 0, columns, rows without a crop); offset_x, offset_y, "
    "content_width, content_height where the resized crop lies in the input_height x input_width model input, "
    "which the logits cover at their own resolution. The mask's shape is the output size.";

}  // namespace radedge::binding
