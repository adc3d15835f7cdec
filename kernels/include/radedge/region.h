// A rectangle of source pixels: the preprocess crop and the histogram region.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace radedge {

// Images and outputs are at most this many pixels on a side, so that products of two sizes
// fit in int64 and device-side indices in int32; DICOM images are at most 65535 wide.
constexpr int64_t kMaxImageSide = int64_t{1} << 24;

// A resolved rectangle: columns x .. x + width - 1, rows y .. y + height - 1, all inside
// the image and at least one pixel.
struct PixelRegion {
  int64_t x = 0;
  int64_t y = 0;
  int64_t width = 0;
  int64_t height = 0;
};

// Resolves a requested rectangle against a rows x columns image. width / height -1 mean
// "to the right / bottom edge" (so the default 0, 0, -1, -1 is the whole image); every
// other value must give a non-empty rectangle inside the image. Throws
// std::invalid_argument naming `op` and `what` ("crop", "region") otherwise.
inline PixelRegion resolve_region(const char* op, const char* what, int64_t rows, int64_t columns, int64_t x,
                                  int64_t y, int64_t width, int64_t height) {
  const auto fail = [&](const char* why) {
    std::ostringstream message;
    message << op << ": the " << what << " (x=" << x << ", y=" << y << ", width=" << width << ", height=" << height
            << ") " << why << " of the " << rows << " rows x " << columns
            << " columns image; give 0 <= x, 0 <= y, width >= 1 and height >= 1 with x + width <= columns and "
               "y + height <= rows (width / height -1: to the edge)";
    throw std::invalid_argument(message.str());
  };
  if (x < 0 || y < 0) fail("starts outside");
  if (x >= columns || y >= rows) fail("starts past the end");
  const int64_t resolved_width = width == -1 ? columns - x : width;
  const int64_t resolved_height = height == -1 ? rows - y : height;
  if (resolved_width < 1 || resolved_height < 1) fail("is empty");
  // Compared as differences so that huge requests cannot overflow.
  if (resolved_width > columns - x || resolved_height > rows - y) fail("reaches outside");
  return PixelRegion{x, y, resolved_width, resolved_height};
}

}  // namespace radedge
