// The preprocess op's Python-facing arguments, shared by the host-array bindings
// (preprocess_binding.cpp) and the zero-copy CUDA-array binding (preprocess_cuda_binding.cpp):
// the model-input spec, the crop and float window. The geometry handed back is geometry_args.h's.
#pragma once

#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "radedge/preprocess.h"

namespace radedge::binding {

namespace py = pybind11;

// (x, y, width, height) in source pixels; width / height -1 reach the edge.
using Crop = std::optional<std::tuple<int64_t, int64_t, int64_t, int64_t>>;
// (center, width, invert) of the float window of float32 pixels.
using Window = std::optional<std::tuple<double, double, bool>>;

inline ResizeMode resize_mode(const std::string& resize) {
  if (resize == "stretch") return ResizeMode::kStretch;
  if (resize == "letterbox") return ResizeMode::kLetterbox;
  throw std::invalid_argument("resize must be 'stretch' or 'letterbox'; got '" + resize + "'");
}

inline OutputType output_type(const std::string& dtype) {
  if (dtype == "float32") return OutputType::kFloat32;
  if (dtype == "float16") return OutputType::kFloat16;
  throw std::invalid_argument("dtype must be 'float32' or 'float16'; got '" + dtype + "'");
}

// The model-input part of the params, shared by every image of a call.
struct Spec {
  int64_t height, width, channels;
  std::string dtype, resize;
  double pad_value;
  std::vector<double> mean, std;
};

inline PreprocessParams params_from(const Spec& spec, const Crop& crop, const Window& window) {
  PreprocessParams params;
  params.height = spec.height;
  params.width = spec.width;
  params.channels = spec.channels;
  params.output_type = output_type(spec.dtype);
  params.resize = resize_mode(spec.resize);
  params.pad_value = static_cast<float>(spec.pad_value);
  params.mean.assign(spec.mean.begin(), spec.mean.end());
  params.std.assign(spec.std.begin(), spec.std.end());
  if (crop) std::tie(params.crop_x, params.crop_y, params.crop_width, params.crop_height) = *crop;
  if (window) std::tie(params.float_window.center, params.float_window.width, params.float_window.invert) = *window;
  return params;
}

}  // namespace radedge::binding
