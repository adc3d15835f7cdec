// The mask decode op's Python-facing arguments, shared by the host-array bindings
// (mask_decode_binding.cpp) and the zero-copy CUDA-array binding (mask_decode_cuda_binding.cpp):
// the activation, thresholds, geometry and pixel spacing, and the statistics handed back.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "geometry_args.h"
#include "radedge/mask_decode.h"

namespace radedge::binding {

namespace py = pybind11;

inline Activation activation_from(const std::string& activation) {
  if (activation == "sigmoid") return Activation::kSigmoid;
  if (activation == "softmax") return Activation::kSoftmax;
  throw std::invalid_argument("activation must be 'sigmoid' or 'softmax'; got '" + activation + "'");
}

inline MaskDecodeParams mask_params_from(const std::string& activation, const std::vector<double>& thresholds,
                                         py::handle geometry, double row_spacing_mm, double column_spacing_mm) {
  MaskDecodeParams params;
  params.activation = activation_from(activation);
  params.thresholds = thresholds;
  params.geometry = geometry_from(geometry);
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

}  // namespace radedge::binding
