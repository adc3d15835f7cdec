// The histogram op's Python-facing arguments, shared by the host-array bindings
// (histogram_binding.cpp) and the zero-copy CUDA-array binding (histogram_cuda_binding.cpp).
#pragma once

#include <optional>
#include <tuple>

#include "radedge/histogram.h"

namespace radedge::binding {

// (x, y, width, height) counted; width / height -1 reach the edge. None: the whole image.
using Region = std::optional<std::tuple<int64_t, int64_t, int64_t, int64_t>>;
// (low, high) inclusive stored values not counted. None: every value counts.
using Padding = std::optional<std::tuple<int64_t, int64_t>>;

inline HistogramParams histogram_params_from(int64_t first_value, const Region& region, const Padding& padding) {
  HistogramParams params;
  params.first_value = first_value;
  if (region) std::tie(params.region_x, params.region_y, params.region_width, params.region_height) = *region;
  if (padding) {
    params.skip_padding = true;
    std::tie(params.padding_low, params.padding_high) = *padding;
  }
  return params;
}

}  // namespace radedge::binding
