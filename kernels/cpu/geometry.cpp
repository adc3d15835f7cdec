// check_geometry (see radedge/geometry.h): the rules of geometry_is_valid, one at a time, each
// with a message that says what to pass instead.
#include "radedge/geometry.h"

#include <sstream>
#include <stdexcept>
#include <string>

namespace radedge {
namespace {

// What the messages call the fields of one axis.
struct AxisNames {
  const char* source;
  const char* crop_start;
  const char* crop_size;
  const char* input;
  const char* scale;
};
constexpr AxisNames kX{"source_columns", "crop_x", "crop_width", "input_width", "scale_x"};
constexpr AxisNames kY{"source_rows", "crop_y", "crop_height", "input_height", "scale_y"};

template <typename... Parts>
[[noreturn]] void fail(const char* op, const Parts&... parts) {
  std::ostringstream message;
  message << op << ": ";
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

void check_sizes(const GeometryAxis& a, const AxisNames& names, const char* op) {
  if (!detail::size_is_valid(a.source_size)) {
    fail(op, names.source, " must be 1 to ", kMaxImageSide, " (the whole source image, pixels); got ", a.source_size,
         ". Pass the geometry the preprocess op returned for this image");
  }
  if (!detail::span_is_inside(a.crop_start, a.crop_size, a.source_size)) {
    fail(op, "the crop must lie inside the source image: ", names.crop_start, "=", a.crop_start, ", ", names.crop_size,
         "=", a.crop_size, " for ", names.source, "=", a.source_size, " (0 <= ", names.crop_start, ", 1 <= ",
         names.crop_size, ", ", names.crop_start, " + ", names.crop_size, " <= ", names.source,
         "); without a crop pass ", names.crop_start, "=0, ", names.crop_size, "=", names.source);
  }
  if (!detail::size_is_valid(a.input_size)) {
    fail(op, names.input, " must be 1 to ", kMaxImageSide, " (the model input, pixels); got ", a.input_size,
         ". Pass the model input's size with the geometry the preprocess op returned");
  }
}

}  // namespace

void check_geometry(const InputGeometry& g, const char* op) {
  const GeometryAxis x = x_axis(g), y = y_axis(g);
  check_sizes(x, kX, op);
  check_sizes(y, kY, op);
  if (!detail::span_is_inside(x.content_offset, x.content_size, x.input_size) ||
      !detail::span_is_inside(y.content_offset, y.content_size, y.input_size)) {
    fail(op, "the content rectangle (offset_x=", g.offset_x, ", offset_y=", g.offset_y, ", content_width=",
         g.content_width, ", content_height=", g.content_height, ") must be non-empty and inside the ", g.input_width,
         " x ", g.input_height, " model input; pass the geometry the preprocess op returned for this image and the "
         "model's input size");
  }
  if (!detail::scale_is_valid(x.scale) || !detail::scale_is_valid(y.scale)) {
    fail(op, "scale_x and scale_y must be finite and > 0 (input pixels per source pixel, content / crop); got scale_x=",
         g.scale_x, ", scale_y=", g.scale_y);
  }
}

void check_geometries(const InputGeometry* geometries, int64_t count, const char* op) {
  if (!geometries) return;
  for (int64_t n = 0; n < count; ++n) {
    // The message's prefix is built only for a geometry that needs one: this runs on every call.
    if (geometry_is_valid(geometries[n])) continue;
    check_geometry(geometries[n], (std::string(op) + ": the geometry of image " + std::to_string(n)).c_str());
  }
}

}  // namespace radedge
