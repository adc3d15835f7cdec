// Where each model-input pixel came from: the one description of the preprocess op's placement
// that every op shares. The preprocess op returns it; mask decode, detection, heatmap peaks and
// CAM overlay read it to map their outputs back to the source image.
//
// Coordinates are continuous pixel coordinates in which pixel i spans [i, i + 1) and its centre
// is at i + 0.5, in the source image, the model input and any head grid alike. The rectangle
// [crop_x, crop_x + crop_width) x [crop_y, crop_y + crop_height) of the source_columns x
// source_rows source image (the whole image when nothing was cropped) was resized to
// content_width x content_height and placed with its top-left corner at (offset_x, offset_y) in
// the input_width x input_height model input; the rest of the input is letterbox padding. Per
// axis (x shown, y alike):
//
//   x_input  = (x_source - crop_x) * scale_x + offset_x,    scale_x = content_width / crop_width
//   x_source = (x_input - offset_x) / scale_x + crop_x      (input_to_source below)
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "radedge/host_device.h"
#include "radedge/region.h"  // kMaxImageSide

namespace radedge {

// A plain struct of 8-byte fields, so that a table of them can be copied to device memory as
// bytes: the detection ops' zero-copy path reads one per image from a uint8 [N, 112] array
// (radedge.ops.detection.geometry_table), whose layout is kGeometryFields below.
struct InputGeometry {
  int64_t source_rows = 0;  // the whole source image, pixels
  int64_t source_columns = 0;
  int64_t crop_x = 0;  // the source rectangle that was resized (the whole image: 0, 0, columns, rows)
  int64_t crop_y = 0;
  int64_t crop_width = 0;
  int64_t crop_height = 0;
  int64_t content_height = 0;  // the resized crop in the model input, pixels
  int64_t content_width = 0;
  int64_t offset_y = 0;  // top-left of the content in the model input (the letterbox padding before it)
  int64_t offset_x = 0;
  double scale_y = 0.0;  // input pixels per source pixel: content_height / crop_height
  double scale_x = 0.0;  // content_width / crop_width
  int64_t input_height = 0;  // the model input, pixels
  int64_t input_width = 0;
};

// The fields in layout order, for code that walks them (the binding's conversions from and to
// Python, the table layout it publishes). Every field is 8 bytes: int64, or float64 for scales.
struct GeometryField {
  const char* name;
  bool is_scale;
  size_t offset;
};
inline constexpr GeometryField kGeometryFields[] = {
    {"source_rows", false, offsetof(InputGeometry, source_rows)},
    {"source_columns", false, offsetof(InputGeometry, source_columns)},
    {"crop_x", false, offsetof(InputGeometry, crop_x)},
    {"crop_y", false, offsetof(InputGeometry, crop_y)},
    {"crop_width", false, offsetof(InputGeometry, crop_width)},
    {"crop_height", false, offsetof(InputGeometry, crop_height)},
    {"content_height", false, offsetof(InputGeometry, content_height)},
    {"content_width", false, offsetof(InputGeometry, content_width)},
    {"offset_y", false, offsetof(InputGeometry, offset_y)},
    {"offset_x", false, offsetof(InputGeometry, offset_x)},
    {"scale_y", true, offsetof(InputGeometry, scale_y)},
    {"scale_x", true, offsetof(InputGeometry, scale_x)},
    {"input_height", false, offsetof(InputGeometry, input_height)},
    {"input_width", false, offsetof(InputGeometry, input_width)},
};
inline constexpr size_t kGeometryFieldCount = sizeof(kGeometryFields) / sizeof(GeometryField);

namespace detail {
constexpr bool geometry_fields_are_packed() {
  for (size_t i = 0; i < kGeometryFieldCount; ++i) {
    if (kGeometryFields[i].offset != 8 * i) return false;
  }
  return true;
}
}  // namespace detail

static_assert(std::is_standard_layout_v<InputGeometry> && std::is_trivially_copyable_v<InputGeometry>,
              "an InputGeometry is copied to the device as bytes");
static_assert(sizeof(int64_t) == 8 && sizeof(double) == 8 && sizeof(InputGeometry) == 8 * kGeometryFieldCount &&
                  detail::geometry_fields_are_packed(),
              "a geometry table row is kGeometryFields, 8 bytes each, in order, without padding");

// One axis of a geometry, so that what the ops do per axis is written once.
struct GeometryAxis {
  int64_t source_size;     // source_columns (x) or source_rows (y)
  int64_t crop_start;      // crop_x / crop_y
  int64_t crop_size;       // crop_width / crop_height
  int64_t content_offset;  // offset_x / offset_y
  int64_t content_size;    // content_width / content_height
  int64_t input_size;      // input_width / input_height
  double scale;            // scale_x / scale_y
};

RADEDGE_HOST_DEVICE inline GeometryAxis x_axis(const InputGeometry& g) {
  return GeometryAxis{g.source_columns, g.crop_x, g.crop_width, g.offset_x, g.content_width, g.input_width, g.scale_x};
}
RADEDGE_HOST_DEVICE inline GeometryAxis y_axis(const InputGeometry& g) {
  return GeometryAxis{g.source_rows, g.crop_y, g.crop_height, g.offset_y, g.content_height, g.input_height, g.scale_y};
}

namespace detail {

RADEDGE_HOST_DEVICE inline bool size_is_valid(int64_t size) { return size >= 1 && size <= kMaxImageSide; }

// [start, start + size) inside [0, extent), compared as a difference so that no sum overflows.
RADEDGE_HOST_DEVICE inline bool span_is_inside(int64_t start, int64_t size, int64_t extent) {
  return start >= 0 && size >= 1 && size <= extent - start;
}

// Finite and > 0; written without std::isfinite so that the device evaluates the same test.
RADEDGE_HOST_DEVICE inline bool scale_is_valid(double scale) { return scale - scale == 0.0 && scale > 0.0; }

}  // namespace detail

// The rules check_geometry explains: source and input sizes 1 .. kMaxImageSide, the crop inside
// the source, the content inside the input, finite scales > 0. The CUDA detection ops evaluate
// it on each row of a device geometry table, which the host cannot check before the op runs.
RADEDGE_HOST_DEVICE inline bool axis_is_valid(const GeometryAxis& a) {
  return detail::size_is_valid(a.source_size) && detail::span_is_inside(a.crop_start, a.crop_size, a.source_size) &&
         detail::size_is_valid(a.input_size) &&
         detail::span_is_inside(a.content_offset, a.content_size, a.input_size) && detail::scale_is_valid(a.scale);
}
RADEDGE_HOST_DEVICE inline bool geometry_is_valid(const InputGeometry& g) {
  return axis_is_valid(x_axis(g)) && axis_is_valid(y_axis(g));
}

// The one check of a geometry, by every op and the bindings. Throws std::invalid_argument
// "<op>: ..." naming the first rule geometry_is_valid finds broken, what arrived and what to pass.
void check_geometry(const InputGeometry& geometry, const char* op);
// check_geometry of each of `count` geometries in host memory (none when null), naming the image.
void check_geometries(const InputGeometry* geometries, int64_t count, const char* op);

// A model-input coordinate along `axis` -> the source coordinate, (x - offset) / scale + crop, in
// unfused double operations, so that the host and the device give the same bits.
RADEDGE_HOST_DEVICE inline double input_to_source(const GeometryAxis& axis, double input) {
  return detail::add_rn(detail::div_rn(detail::add_rn(input, -static_cast<double>(axis.content_offset)), axis.scale),
                        static_cast<double>(axis.crop_start));
}

}  // namespace radedge
