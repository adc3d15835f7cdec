// See geometry_args.h. Also binds what the geometry table of the CUDA detection ops needs:
// GEOMETRY_FIELDS (its row layout) and geometry_table (the rows, checked).
#include "geometry_args.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <stdexcept>

namespace radedge::binding {
namespace {

std::string field_list() {
  std::string names;
  for (const GeometryField& field : kGeometryFields) names += (names.empty() ? "" : ", ") + std::string(field.name);
  return names;
}

// The field names as interned Python strings, made once, so that looking a field up allocates
// nothing: a geometry is parsed on every op call. Never freed, since the interpreter may be
// gone by the time static destructors run.
PyObject* field_key(size_t index) {
  static PyObject** const keys = [] {
    auto** made = new PyObject*[kGeometryFieldCount];
    for (size_t i = 0; i < kGeometryFieldCount; ++i) made[i] = PyUnicode_InternFromString(kGeometryFields[i].name);
    return made;
  }();
  return keys[index];
}

bool is_field(const std::string& key) {
  for (const GeometryField& field : kGeometryFields) {
    if (key == field.name) return true;
  }
  return false;
}

// The first key of `mapping` that is not a field, or "" when there is none.
std::string unknown_key(py::handle mapping) {
  for (const py::handle key : mapping.attr("keys")()) {
    const std::string text = py::str(key);
    if (!is_field(text)) return text;
  }
  return "";
}

// Where a field is, for messages: "geometry['offset_x']" in a mapping, "geometry.offset_x" on an
// object. Made only when a message needs it.
std::string where(const std::string& name, const GeometryField& field, bool keyed) {
  return keyed ? name + "['" + field.name + "']" : name + "." + field.name;
}

// Stores a field's value: an exact integer (anything with __index__) or, for a scale, any real
// number (not a string).
void store(InputGeometry& geometry, const GeometryField& field, PyObject* value, const std::string& name,
           bool keyed) {
  char* at = reinterpret_cast<char*>(&geometry) + field.offset;
  if (field.is_scale) {
    bool ok = true;
    double scale = 0.0;
    if (PyFloat_CheckExact(value)) {
      scale = PyFloat_AS_DOUBLE(value);
    } else if (PyNumber_Check(value)) {
      scale = PyFloat_AsDouble(value);
      ok = !(scale == -1.0 && PyErr_Occurred());
    } else {
      ok = false;
    }
    if (!ok) {
      PyErr_Clear();
      throw std::invalid_argument(where(name, field, keyed) + " must be a number (input pixels per source pixel); "
                                  "got " + std::string(py::repr(value)));
    }
    std::memcpy(at, &scale, sizeof scale);
    return;
  }
  long long integer = -1;
  if (PyLong_CheckExact(value)) {
    integer = PyLong_AsLongLong(value);
  } else {
    PyObject* index = PyNumber_Index(value);
    if (index == nullptr) {
      PyErr_Clear();
      throw std::invalid_argument(where(name, field, keyed) + " must be an integer (pixels); got " +
                                  std::string(py::repr(value)));
    }
    integer = PyLong_AsLongLong(index);
    Py_DECREF(index);
  }
  if (integer == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw std::invalid_argument(where(name, field, keyed) + " is out of range; got " + std::string(py::repr(value)));
  }
  const int64_t stored = integer;
  std::memcpy(at, &stored, sizeof stored);
}

InputGeometry from_mapping(py::handle mapping, const std::string& name) {
  InputGeometry result;
  const bool is_dict = PyDict_Check(mapping.ptr());
  for (size_t i = 0; i < kGeometryFieldCount; ++i) {
    const GeometryField& field = kGeometryFields[i];
    // A borrowed reference from a dict; a new one from any other mapping.
    PyObject* value = is_dict ? PyDict_GetItemWithError(mapping.ptr(), field_key(i))
                              : PyObject_GetItem(mapping.ptr(), field_key(i));
    if (value == nullptr) {
      PyErr_Clear();
      // A misspelt key explains a missing field best.
      const std::string unknown = unknown_key(mapping);
      if (!unknown.empty()) {
        throw std::invalid_argument(name + " has an unknown key '" + unknown + "'; a geometry has exactly " +
                                    field_list());
      }
      throw std::invalid_argument(name + " lacks '" + field.name + "'; a geometry has exactly " + field_list() +
                                  " (radedge.ops.ResizeGeometry's fields with the model input size)");
    }
    const py::object owned =
        is_dict ? py::reinterpret_borrow<py::object>(value) : py::reinterpret_steal<py::object>(value);
    store(result, field, owned.ptr(), name, true);
  }
  // Every field is there: anything more is a key that is not one, refused so that a misspelt
  // field cannot pass unnoticed beside a correct one.
  if (py::len(mapping) != kGeometryFieldCount) {
    throw std::invalid_argument(name + " has an unknown key '" + unknown_key(mapping) + "'; a geometry has exactly " +
                                field_list());
  }
  return result;
}

}  // namespace

InputGeometry geometry_from(py::handle geometry, const std::string& name) {
  if (PyDict_Check(geometry.ptr()) || py::hasattr(geometry, "keys")) return from_mapping(geometry, name);
  InputGeometry result;
  for (size_t i = 0; i < kGeometryFieldCount; ++i) {
    const GeometryField& field = kGeometryFields[i];
    const py::object value = py::reinterpret_steal<py::object>(PyObject_GetAttr(geometry.ptr(), field_key(i)));
    if (!value || value.is_none()) {
      PyErr_Clear();
      throw std::invalid_argument(name + "." + field.name + " is missing or None; pass a ResizeGeometry that " +
                                  "records the model input size (the preprocess op returns one), or a mapping of " +
                                  field_list());
    }
    store(result, field, value.ptr(), name, false);
  }
  return result;
}

std::vector<InputGeometry> geometries_from(const std::vector<py::object>& geometries, int64_t batch,
                                           bool one_for_all) {
  const int64_t count = static_cast<int64_t>(geometries.size());
  if (count != batch && !(one_for_all && count == 1)) {
    throw std::invalid_argument(std::string("geometries must hold ") +
                                (one_for_all ? "one geometry for the whole batch or " : "") + "one per image (" +
                                std::to_string(batch) + "); got " + std::to_string(count));
  }
  std::vector<InputGeometry> result;
  for (int64_t n = 0; n < count; ++n) {
    result.push_back(geometry_from(geometries[static_cast<size_t>(n)], "geometries[" + std::to_string(n) + "]"));
  }
  return result;
}

py::dict geometry_dict(const InputGeometry& geometry) {
  py::dict d;
  for (size_t i = 0; i < kGeometryFieldCount; ++i) {
    const GeometryField& field = kGeometryFields[i];
    const char* at = reinterpret_cast<const char*>(&geometry) + field.offset;
    py::object value;
    if (field.is_scale) {
      double scale;
      std::memcpy(&scale, at, sizeof scale);
      value = py::float_(scale);
    } else {
      int64_t integer;
      std::memcpy(&integer, at, sizeof integer);
      value = py::int_(integer);
    }
    d[py::handle(field_key(i))] = value;
  }
  return d;
}

const char* const kGeometryDoc =
    "A geometry (radedge/geometry.h's InputGeometry) is a mapping with exactly source_rows, source_columns, crop_x, "
    "crop_y, crop_width, crop_height, content_height, content_width, offset_y, offset_x, input_height, input_width "
    "(integers, pixels) and scale_y, scale_x (input pixels per source pixel), or an object with them as attributes "
    "(a ResizeGeometry that records the model input size); radedge.ops._geometry.input_geometry makes one.";

}  // namespace radedge::binding

namespace radedge {

void bind_geometry(pybind11::module_& m) {
  namespace py = pybind11;
  py::list fields;
  for (const GeometryField& field : kGeometryFields) {
    fields.append(py::make_tuple(field.name, field.is_scale ? "float64" : "int64"));
  }
  m.attr("GEOMETRY_FIELDS") = py::tuple(fields);

  m.def(
      "geometry_table",
      [](const std::vector<py::object>& geometries) {
        const int64_t count = static_cast<int64_t>(geometries.size());
        const std::vector<InputGeometry> rows = binding::geometries_from(geometries, count, false);
        check_geometries(rows.data(), count, "geometry_table");
        py::array_t<uint8_t> table({static_cast<py::ssize_t>(count), static_cast<py::ssize_t>(sizeof(InputGeometry))});
        if (count > 0) std::memcpy(table.mutable_data(), rows.data(), sizeof(InputGeometry) * rows.size());
        return table;
      },
      py::arg("geometries"),
      (std::string("The geometries, one per image, checked, as a uint8 [N, ") + std::to_string(sizeof(InputGeometry)) +
       "] table whose rows are the bytes of the InputGeometry the CUDA detection ops read: GEOMETRY_FIELDS in order, "
       "8 bytes each, native byte order. " + binding::kGeometryDoc)
          .c_str());
}

}  // namespace radedge
