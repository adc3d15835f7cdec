// How a head's output grid lies over the model input: what the decode ops that read a grid
// (heatmap peaks, CAM overlay) share. The model input lies over the source image as an
// InputGeometry says (radedge/geometry.h); a head's grid spans the whole input, so with
// continuous coordinates (pixel or cell i spans [i, i + 1), centre i + 0.5)
//
//   x_input = x_grid * input_width / grid_width
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "radedge/geometry.h"
#include "radedge/host_device.h"

namespace radedge {

// Element type of a head output read by the decode ops; float16 is IEEE binary16 bits.
enum class MapType : int { kFloat32, kFloat16 };

inline const char* map_type_name(MapType type) {
  switch (type) {
    case MapType::kFloat32: return "float32";
    case MapType::kFloat16: return "float16";
  }
  return "unknown";
}

// Grid sizes are capped, as images are, so that products of two sizes fit in int64 and
// device-side indices fit in int32 after a multiplication by a small constant.
constexpr int64_t kMaxGridSize = kMaxImageSide;

// The head-grid cells whose centres lie inside the content rectangle: columns
// [first_x, last_x) and rows [first_y, last_y). Empty (first == last) when the content is
// narrower than a cell and falls between two centres.
struct ContentCells {
  int64_t first_x, last_x, first_y, last_y;
  RADEDGE_HOST_DEVICE int64_t width() const { return last_x - first_x; }
  RADEDGE_HOST_DEVICE int64_t height() const { return last_y - first_y; }
};

namespace detail {

// The first cell x (0 .. grid_size) whose centre (x + 0.5) * input_size / grid_size is at
// or after `boundary` (input pixels): the least x with (2x + 1) * input_size >=
// 2 * grid_size * boundary, exact in integers.
RADEDGE_HOST_DEVICE inline int64_t first_cell_from(int64_t boundary, int64_t input_size, int64_t grid_size) {
  const int64_t numerator = 2 * grid_size * boundary - input_size;
  if (numerator <= 0) return 0;
  const int64_t cell = (numerator + 2 * input_size - 1) / (2 * input_size);
  return cell < grid_size ? cell : grid_size;
}

}  // namespace detail

RADEDGE_HOST_DEVICE inline ContentCells content_cells(const InputGeometry& g, int64_t grid_height,
                                                      int64_t grid_width) {
  ContentCells cells;
  cells.first_x = detail::first_cell_from(g.offset_x, g.input_width, grid_width);
  cells.last_x = detail::first_cell_from(g.offset_x + g.content_width, g.input_width, grid_width);
  cells.first_y = detail::first_cell_from(g.offset_y, g.input_height, grid_height);
  cells.last_y = detail::first_cell_from(g.offset_y + g.content_height, g.input_height, grid_height);
  return cells;
}

// IEEE binary16 bits -> float, exact (every half is a float; NaN payloads are kept). Every
// case is computed and one selected with masks, so a conversion loop vectorises with
// baseline SSE2 / NEON.
inline float half_to_float(uint16_t half) {
  const uint32_t shifted = static_cast<uint32_t>(half & 0x7fffu) << 13;  // exponent and mantissa, float-aligned
  const uint32_t exponent = shifted & 0x0f800000u;
  // Normal: rebias the exponent from 15 to 127.
  const uint32_t normal = shifted + (112u << 23);
  // Infinity or NaN.
  const uint32_t special = shifted | 0x7f800000u;
  // Zero or subnormal, m * 2^-24: (1 + m / 2^10) * 2^-14 - 2^-14, exact, and computed on
  // normal floats only, so that flush-to-zero or denormals-are-zero modes cannot change it.
  const uint32_t offset_bits = shifted + (113u << 23);
  float offset;
  std::memcpy(&offset, &offset_bits, sizeof offset);
  const float small = offset - 6.103515625e-05f;
  uint32_t small_bits;
  std::memcpy(&small_bits, &small, sizeof small_bits);
  const uint32_t is_special = 0u - static_cast<uint32_t>(exponent == 0x0f800000u);
  const uint32_t is_small = 0u - static_cast<uint32_t>(exponent == 0u);
  uint32_t bits = (special & is_special) | (small_bits & is_small) | (normal & ~(is_special | is_small));
  bits |= static_cast<uint32_t>(half & 0x8000u) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace radedge
