// Bindings of the fused preprocess op: numpy arrays are checked here (dtype, rank, strides,
// writeability) and turned into the views of radedge/preprocess.h; the op's own argument
// checks (check_preprocess_args) then run in the backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/device.h"
#include "radedge/errors.h"
#include "radedge/preprocess.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
namespace {
[[noreturn]] void no_cuda() {
  throw CudaError(
      "preprocess (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build "
      "time); preprocess runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
}  // namespace

size_t preprocess_cuda_workspace_bytes(int64_t, int64_t, const PreprocessParams&) { no_cuda(); }
ResizeGeometry preprocess_cuda(const PixelsView&, const LutView&, const OutputView&, int64_t,
                               const PreprocessParams&, void*, size_t, CUstream_st*) {
  no_cuda();
}
ResizeGeometry preprocess_cuda_host(const PixelsView&, const LutView&, const OutputView&, int64_t,
                                    const PreprocessParams&) {
  no_cuda();
}
#endif

namespace {

std::string describe(const py::array& array) {
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

bool is_float16(const py::array& array) { return array.dtype().equal(py::dtype("float16")); }

PixelsView pixels_view(const py::array& pixels) {
  PixelsView view;
  if (pixels.ndim() == 2 && is<uint8_t>(pixels)) {
    view.type = PixelType::kUint8;
  } else if (pixels.ndim() == 2 && is<uint16_t>(pixels)) {
    view.type = PixelType::kUint16;
  } else if (pixels.ndim() == 2 && is<int16_t>(pixels)) {
    view.type = PixelType::kInt16;
  } else {
    throw std::invalid_argument("pixels must be uint8, uint16 or int16 [rows, columns] in native byte order; got " +
                                describe(pixels));
  }
  view.rows = pixels.shape(0);
  view.columns = pixels.shape(1);
  view.data = pixels.data();
  // An empty image is refused by check_preprocess_args with its own message; its
  // strides mean nothing.
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
  return view;
}

LutView lut_view(const py::array& lut, int64_t lut_first_value) {
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

OutputView output_view(py::array& out) {
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

ResizeMode resize_mode(const std::string& resize) {
  if (resize == "stretch") return ResizeMode::kStretch;
  if (resize == "letterbox") return ResizeMode::kLetterbox;
  throw std::invalid_argument("resize must be 'stretch' or 'letterbox'; got '" + resize + "'");
}

OutputType output_type(const std::string& dtype) {
  if (dtype == "float32") return OutputType::kFloat32;
  if (dtype == "float16") return OutputType::kFloat16;
  throw std::invalid_argument("dtype must be 'float32' or 'float16'; got '" + dtype + "'");
}

PreprocessParams params_from(int64_t height, int64_t width, int64_t channels, const std::string& dtype,
                             const std::string& resize, double pad_value, const std::vector<double>& mean,
                             const std::vector<double>& stddev) {
  PreprocessParams params;
  params.height = height;
  params.width = width;
  params.channels = channels;
  params.output_type = output_type(dtype);
  params.resize = resize_mode(resize);
  params.pad_value = static_cast<float>(pad_value);
  params.mean.assign(mean.begin(), mean.end());
  params.std.assign(stddev.begin(), stddev.end());
  return params;
}

py::dict geometry_dict(const ResizeGeometry& g) {
  py::dict d;
  d["source_rows"] = g.source_rows;
  d["source_columns"] = g.source_columns;
  d["content_height"] = g.content_height;
  d["content_width"] = g.content_width;
  d["offset_y"] = g.offset_y;
  d["offset_x"] = g.offset_x;
  d["scale_y"] = g.scale_y;
  d["scale_x"] = g.scale_x;
  return d;
}

}  // namespace

void bind_preprocess(py::module_& m) {
  m.def(
      "resize_geometry",
      [](int64_t source_rows, int64_t source_columns, int64_t height, int64_t width, const std::string& resize) {
        return geometry_dict(resize_geometry(source_rows, source_columns, height, width, resize_mode(resize)));
      },
      py::arg("source_rows"), py::arg("source_columns"), py::arg("height"), py::arg("width"),
      py::arg("resize") = "letterbox",
      "Where a source_rows x source_columns image lands in a height x width output: a dict with source_rows, "
      "source_columns, content_height, content_width, offset_y, offset_x (ints, pixels) and scale_y, scale_x "
      "(content / source).");

  m.def(
      "preprocess_cpu",
      [](const py::array& pixels, const py::array& lut, int64_t lut_first_value, py::array out, int64_t slot,
         int64_t height, int64_t width, int64_t channels, const std::string& dtype, const std::string& resize,
         double pad_value, const std::vector<double>& mean, const std::vector<double>& stddev, int threads) {
        const PixelsView pixels_in = pixels_view(pixels);
        const LutView lut_in = lut_view(lut, lut_first_value);
        const OutputView out_view = output_view(out);
        const PreprocessParams params = params_from(height, width, channels, dtype, resize, pad_value, mean, stddev);
        ResizeGeometry g;
        {
          py::gil_scoped_release release;
          g = preprocess_cpu(pixels_in, lut_in, out_view, slot, params, threads);
        }
        return geometry_dict(g);
      },
      py::arg("pixels"), py::arg("lut"), py::arg("lut_first_value"), py::arg("out"), py::arg("slot"), py::kw_only(),
      py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("dtype"), py::arg("resize"),
      py::arg("pad_value"), py::arg("mean"), py::arg("std"), py::arg("threads") = 0,
      "Fused LUT -> resize -> normalise of pixels (uint8/uint16/int16 [rows, columns]) into out[slot] "
      "(float32/float16 [N, channels, height, width]) on CPU threads (0: the default count). Returns the "
      "resize geometry as a dict.");

  m.def(
      "preprocess_cuda_host",
      [](const py::array& pixels, const py::array& lut, int64_t lut_first_value, py::array out, int64_t slot,
         int64_t height, int64_t width, int64_t channels, const std::string& dtype, const std::string& resize,
         double pad_value, const std::vector<double>& mean, const std::vector<double>& stddev) {
        const PixelsView pixels_in = pixels_view(pixels);
        const LutView lut_in = lut_view(lut, lut_first_value);
        const OutputView out_view = output_view(out);
        const PreprocessParams params = params_from(height, width, channels, dtype, resize, pad_value, mean, stddev);
        ResizeGeometry g;
        {
          py::gil_scoped_release release;
          g = preprocess_cuda_host(pixels_in, lut_in, out_view, slot, params);
        }
        return geometry_dict(g);
      },
      py::arg("pixels"), py::arg("lut"), py::arg("lut_first_value"), py::arg("out"), py::arg("slot"), py::kw_only(),
      py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("dtype"), py::arg("resize"),
      py::arg("pad_value"), py::arg("mean"), py::arg("std"),
      "preprocess_cpu's op run by the CUDA kernel on host arrays: copies pixels and lut to the current CUDA "
      "device, runs, waits and copies out[slot] back. Raises RuntimeError naming the CUDA error, or saying "
      "that the module was built without CUDA.");
}

}  // namespace radedge
