// The one conversion between Python geometries and radedge::InputGeometry (radedge/geometry.h),
// used by every op binding. A geometry arrives as a mapping with exactly InputGeometry's fields
// (what radedge.ops._geometry.input_geometry makes of a ResizeGeometry and the model input
// size), or as any object with those fields as attributes (a ResizeGeometry that records its
// input size). Integer fields must be integers (an offset of 1.5 is refused, not truncated),
// scales numbers; the op's check_geometry then checks the values.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "radedge/geometry.h"

namespace radedge::binding {

namespace py = pybind11;

// `name` names the argument in messages: "geometry", "geometries[2]".
InputGeometry geometry_from(py::handle geometry, const std::string& name = "geometry");

// One geometry per image of a batch of `batch`, or with one_for_all also a single geometry for
// every image (then the result holds that one).
std::vector<InputGeometry> geometries_from(const std::vector<py::object>& geometries, int64_t batch,
                                           bool one_for_all);

// What the preprocess op hands back: InputGeometry's fields by name.
py::dict geometry_dict(const InputGeometry& geometry);

// The part of the ops' docstrings that says what a geometry is.
extern const char* const kGeometryDoc;

}  // namespace radedge::binding
