// numpy arrays -> the views of the native ops, checked at the binding edge: dtype, rank,
// strides, writeability and, for float pixels, finiteness. Shared by the bindings.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

#include "radedge/preprocess.h"

namespace radedge::binding {

namespace py = pybind11;

inline std::string describe(const py::array& array) {
  std::ostringstream text;
  text << std::string(py::str(array.dtype())) << " with shape (";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text << (i ? ", " : "") << array.shape(i);
  text << (array.ndim() == 1 ? ",)" : ")");
  return text.str();
}

template <typename T>
bool is(const py::array& array) {
  return array.dtype().equal(py::dtype::of<T>());
}

inline bool is_float16(const py::array& array) { return array.dtype().equal(py::dtype("float16")); }

// Throws ValueError if a float32 view holds NaN or an infinity: the op would map them to
// 0 or 1 without complaint, which would hide a broken upstream step.
inline void check_finite(const PixelsView& view) {
  if (view.type != PixelType::kFloat32) return;
  for (int64_t y = 0; y < view.rows; ++y) {
    const uint32_t* row = static_cast<const uint32_t*>(view.data) + y * view.row_stride;
    uint32_t non_finite = 0;
    // All exponent bits set is infinity or NaN; integer tests vectorise where isfinite may not.
    for (int64_t x = 0; x < view.columns; ++x) non_finite |= static_cast<uint32_t>((row[x] & 0x7f800000u) == 0x7f800000u);
    if (non_finite) {
      for (int64_t x = 0; x < view.columns; ++x) {
        if ((row[x] & 0x7f800000u) == 0x7f800000u) {
          float value;
          std::memcpy(&value, &row[x], sizeof value);
          std::ostringstream message;
          message << "pixels must be finite; pixel (row " << y << ", column " << x << ") is " << value
                  << ". Replace NaN / infinity first (e.g. numpy.nan_to_num with the value that means no signal)";
          throw std::invalid_argument(message.str());
        }
      }
    }
  }
}

// Pixels [rows, columns] of uint8 / uint16 / int16 stored values (or float32 values when
// allow_float), columns contiguous, rows at any positive stride.
inline PixelsView pixels_view(const py::array& pixels, bool allow_float = true) {
  PixelsView view;
  if (pixels.ndim() == 2 && is<uint8_t>(pixels)) {
    view.type = PixelType::kUint8;
  } else if (pixels.ndim() == 2 && is<uint16_t>(pixels)) {
    view.type = PixelType::kUint16;
  } else if (pixels.ndim() == 2 && is<int16_t>(pixels)) {
    view.type = PixelType::kInt16;
  } else if (allow_float && pixels.ndim() == 2 && is<float>(pixels)) {
    view.type = PixelType::kFloat32;
  } else {
    throw std::invalid_argument(std::string("pixels must be uint8, uint16, int16") +
                                (allow_float ? " or float32" : " (stored values)") +
                                " [rows, columns] in native byte order; got " + describe(pixels));
  }
  view.rows = pixels.shape(0);
  view.columns = pixels.shape(1);
  view.data = pixels.data();
  // An empty image is refused by the op's own check with its own message; its strides
  // mean nothing.
  if (view.rows == 0 || view.columns == 0) return view;
  const py::ssize_t item = pixels.itemsize();
  // A stride of a length-1 axis is never used, and numpy leaves it arbitrary.
  if (view.columns > 1 && pixels.strides(1) != item) {
    throw std::invalid_argument("pixels must have contiguous columns (column stride " + std::to_string(item) +
                                " bytes); got " + describe(pixels) + " with strides (" +
                                std::to_string(pixels.strides(0)) + ", " + std::to_string(pixels.strides(1)) +
                                "). Pass numpy.ascontiguousarray(pixels)");
  }
  if (view.rows > 1) {
    const py::ssize_t stride = pixels.strides(0);
    if (stride <= 0 || stride % item != 0 || stride / item < view.columns) {
      throw std::invalid_argument("pixels rows must be laid out top to bottom, a whole number of pixels apart; got " +
                                  describe(pixels) + " with a row stride of " + std::to_string(stride) +
                                  " bytes. Pass numpy.ascontiguousarray(pixels)");
    }
    view.row_stride = stride / item;
  } else {
    view.row_stride = view.columns;
  }
  check_finite(view);
  return view;
}

// The table for stored-value pixels; None gives the empty table float32 pixels go with.
inline LutView lut_view(const py::object& lut_object, int64_t lut_first_value, const PixelsView& pixels) {
  if (lut_object.is_none()) {
    if (pixels.type != PixelType::kFloat32) {
      throw std::invalid_argument(std::string("lut is None, but the pixels are ") + pixel_type_name(pixels.type) +
                                  " stored values, which need the lookup table that maps them to display values "
                                  "(radedge.intensity.build_lut); only float32 pixels go without one");
    }
    return LutView{nullptr, 0, 0};
  }
  if (!py::isinstance<py::array>(lut_object)) {
    throw std::invalid_argument("lut must be a float32 [entries] numpy array or None; got " +
                                std::string(py::str(py::type::of(lut_object).attr("__name__"))));
  }
  const py::array lut = py::reinterpret_borrow<py::array>(lut_object);
  if (lut.ndim() != 1 || !is<float>(lut)) {
    throw std::invalid_argument("lut must be a float32 [entries] table; got " + describe(lut) +
                                ". Convert it with numpy.asarray(lut, dtype=numpy.float32)");
  }
  if (lut.shape(0) > 1 && lut.strides(0) != static_cast<py::ssize_t>(sizeof(float))) {
    throw std::invalid_argument("lut must be contiguous; got a stride of " + std::to_string(lut.strides(0)) +
                                " bytes. Pass numpy.ascontiguousarray(lut)");
  }
  LutView view;
  view.data = static_cast<const float*>(lut.data());
  view.size = lut.shape(0);
  view.first_value = lut_first_value;
  return view;
}

inline OutputView output_view(py::array& out) {
  OutputView view;
  if (out.ndim() == 4 && is<float>(out)) {
    view.type = OutputType::kFloat32;
  } else if (out.ndim() == 4 && is_float16(out)) {
    view.type = OutputType::kFloat16;
  } else {
    throw std::invalid_argument("out must be float32 or float16 [N, C, H, W]; got " + describe(out));
  }
  if (!(out.flags() & py::array::c_style)) {
    throw std::invalid_argument("out must be C-contiguous [N, C, H, W]; got a strided view of " + describe(out) +
                                ". Allocate it with numpy.empty((N, C, H, W), dtype)");
  }
  if (!out.writeable()) throw std::invalid_argument("out is read-only; pass a writeable array");
  view.data = out.mutable_data();
  view.batch = out.shape(0);
  view.channels = out.shape(1);
  view.height = out.shape(2);
  view.width = out.shape(3);
  return view;
}

}  // namespace radedge::binding
