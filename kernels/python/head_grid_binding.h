// What the bindings of the decode ops share: the placement dict, and describing and
// checking the numpy arrays they receive.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <set>
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

// The placement dict of the Python wrappers: input_height, input_width, content_height,
// content_width, offset_y, offset_x, crop_y, crop_x (integers) and scale_y, scale_x.
inline InputPlacement placement_from(const py::dict& placement) {
  static const std::set<std::string> kIntegers = {"input_height",  "input_width", "content_height", "content_width",
                                                  "offset_y",      "offset_x",    "crop_y",         "crop_x"};
  static const std::set<std::string> kReals = {"scale_y", "scale_x"};
  for (const auto& item : placement) {
    const std::string key = py::str(item.first);
    if (!kIntegers.count(key) && !kReals.count(key)) {
      throw std::invalid_argument("placement has an unknown key '" + key +
                                  "'; expected input_height, input_width, content_height, content_width, offset_y, "
                                  "offset_x, scale_y, scale_x, crop_y, crop_x");
    }
  }
  const auto integer = [&](const char* key) -> int64_t {
    if (!placement.contains(key)) throw std::invalid_argument(std::string("placement is missing '") + key + "'");
    PyObject* index = PyNumber_Index(py::object(placement[key]).ptr());
    if (index == nullptr) {
      PyErr_Clear();
      throw std::invalid_argument(std::string("placement['") + key + "'] must be an integer; got " +
                                  std::string(py::repr(placement[key])));
    }
    const py::object owned = py::reinterpret_steal<py::object>(index);
    const long long value = PyLong_AsLongLong(owned.ptr());
    if (value == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      throw std::invalid_argument(std::string("placement['") + key + "'] is out of range");
    }
    return static_cast<int64_t>(value);
  };
  const auto real = [&](const char* key) -> double {
    if (!placement.contains(key)) throw std::invalid_argument(std::string("placement is missing '") + key + "'");
    PyObject* number = PyNumber_Float(py::object(placement[key]).ptr());
    if (number == nullptr) {
      PyErr_Clear();
      throw std::invalid_argument(std::string("placement['") + key + "'] must be a number; got " +
                                  std::string(py::repr(placement[key])));
    }
    return py::reinterpret_steal<py::float_>(number).cast<double>();
  };
  InputPlacement p;
  p.input_height = integer("input_height");
  p.input_width = integer("input_width");
  p.content_height = integer("content_height");
  p.content_width = integer("content_width");
  p.offset_y = integer("offset_y");
  p.offset_x = integer("offset_x");
  p.scale_y = real("scale_y");
  p.scale_x = real("scale_x");
  p.crop_y = integer("crop_y");
  p.crop_x = integer("crop_x");
  return p;
}

}  // namespace radedge::binding
