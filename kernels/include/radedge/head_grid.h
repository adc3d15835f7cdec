// How a head's output grid lies over the model input, and the model input over the source
// image: what the decode ops (heatmap peaks, CAM overlay) share.
//
// Coordinates are continuous pixel coordinates in which pixel i spans [i, i + 1) and its
// centre is at i + 0.5, in the source image, the model input and the head grid alike:
//
//   x_input  = (x_source - crop_x) * scale_x + offset_x     (the preprocess op's placement)
//   x_input  = x_grid * input_width / grid_width             (a head's grid spans the whole input)
//
// The source region that was resized (the whole image, or a crop of it starting at
// crop_x, crop_y) fills the content rectangle [offset_x, offset_x + content_width) x
// [offset_y, offset_y + content_height) of the input; the rest is letterbox padding.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

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

// Where the source image (or its crop) lies in the model input; the numbers of
// sdk/radedge/preprocess.py's ResizeGeometry plus the model input size.
struct InputPlacement {
  int64_t input_height = 0;  // model input, pixels
  int64_t input_width = 0;
  int64_t content_height = 0;  // the resized source region inside the input, pixels
  int64_t content_width = 0;
  int64_t offset_y = 0;  // top-left of the content in the input
  int64_t offset_x = 0;
  double scale_y = 0.0;  // input pixels per source pixel
  double scale_x = 0.0;
  int64_t crop_y = 0;  // top-left of the resized region in the source, pixels (0 for the whole image)
  int64_t crop_x = 0;
};

// Sizes are capped, as in the preprocess op, so that products of two sizes fit in int64
// and device-side indices fit in int32 after a multiplication by a small constant.
constexpr int64_t kMaxGridSize = int64_t{1} << 24;

// Throws std::invalid_argument "<op>: ..." unless the placement is self-consistent: sizes
// 1 .. kMaxGridSize, the content inside the input, finite positive scales, a crop origin
// >= 0.
inline void check_input_placement(const InputPlacement& p, const char* op) {
  const auto fail = [op](const std::string& message) { throw std::invalid_argument(std::string(op) + ": " + message); };
  if (p.input_height < 1 || p.input_width < 1 || p.input_height > kMaxGridSize || p.input_width > kMaxGridSize) {
    fail("the model input must be 1 to " + std::to_string(kMaxGridSize) + " pixels on each side; got input_height=" +
         std::to_string(p.input_height) + ", input_width=" + std::to_string(p.input_width));
  }
  if (p.content_height < 1 || p.content_width < 1 || p.offset_y < 0 || p.offset_x < 0 ||
      p.content_height > p.input_height - p.offset_y || p.content_width > p.input_width - p.offset_x) {
    fail("the content rectangle (offset_x=" + std::to_string(p.offset_x) + ", offset_y=" + std::to_string(p.offset_y) +
         ", content_width=" + std::to_string(p.content_width) + ", content_height=" +
         std::to_string(p.content_height) + ") must be non-empty and inside the " + std::to_string(p.input_width) +
         " x " + std::to_string(p.input_height) +
         " model input; pass the geometry the preprocess op returned for this image and the model's input size");
  }
  if (!std::isfinite(p.scale_x) || !std::isfinite(p.scale_y) || !(p.scale_x > 0.0) || !(p.scale_y > 0.0)) {
    fail("scale_x and scale_y must be finite and > 0 (input pixels per source pixel); got scale_x=" +
         std::to_string(p.scale_x) + ", scale_y=" + std::to_string(p.scale_y));
  }
  if (p.crop_x < 0 || p.crop_y < 0 || p.crop_x > kMaxGridSize || p.crop_y > kMaxGridSize) {
    fail("crop_x and crop_y must be 0 to " + std::to_string(kMaxGridSize) + " source pixels; got crop_x=" +
         std::to_string(p.crop_x) + ", crop_y=" + std::to_string(p.crop_y));
  }
}

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

RADEDGE_HOST_DEVICE inline ContentCells content_cells(const InputPlacement& p, int64_t grid_height,
                                                      int64_t grid_width) {
  ContentCells cells;
  cells.first_x = detail::first_cell_from(p.offset_x, p.input_width, grid_width);
  cells.last_x = detail::first_cell_from(p.offset_x + p.content_width, p.input_width, grid_width);
  cells.first_y = detail::first_cell_from(p.offset_y, p.input_height, grid_height);
  cells.last_y = detail::first_cell_from(p.offset_y + p.content_height, p.input_height, grid_height);
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
