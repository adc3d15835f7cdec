// What the bindings of the grid decode ops (heatmap peaks, CAM overlay) share: describing and
// checking the numpy arrays they receive.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "radedge/head_grid.h"

namespace radedge::binding {

namespace py = pybind11;

inline std::string describe(const py::array& array) {
  std::ostringstream text;
  text << std::string(py::str(array.dtype())) << " with shape (";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text << (i ? ", " : "") << array.shape(i);
  text << (array.ndim() == 1 ? ",)" : ")");
  return text.str();
}

inline bool is_float32(const py::array& array) { return array.dtype().equal(py::dtype::of<float>()); }
inline bool is_float16(const py::array& array) { return array.dtype().equal(py::dtype("float16")); }
inline bool is_uint8(const py::array& array) { return array.dtype().equal(py::dtype::of<uint8_t>()); }

// Throws unless `array` is C-contiguous; `shape` names the expected layout in the message.
inline void require_c_contiguous(const py::array& array, const char* name, const char* shape) {
  if (!(array.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(name) + " must be C-contiguous " + shape + "; got a strided view of " +
                                describe(array) + ". Pass numpy.ascontiguousarray(" + name + ")");
  }
}

// A float16 / float32 map, or a ValueError naming what is accepted.
inline MapType map_type(const py::array& array, const char* name, const char* shape) {
  if (is_float32(array)) return MapType::kFloat32;
  if (is_float16(array)) return MapType::kFloat16;
  throw std::invalid_argument(std::string(name) + " must be float32 or float16 " + shape +
                              " in native byte order; got " + describe(array));
}

}  // namespace radedge::binding
