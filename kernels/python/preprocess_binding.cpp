// Bindings of the fused preprocess op: numpy arrays are checked here (dtype, rank, strides,
// writeability, finite float pixels; array_views.h) and turned into the views of
// radedge/preprocess.h; the op's own argument checks (check_preprocess_args) then run in
// the backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "array_views.h"
#include "geometry_args.h"
#include "preprocess_args.h"
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
InputGeometry preprocess_cuda(const PixelsView&, const LutView&, const OutputView&, int64_t,
                              const PreprocessParams&, void*, size_t, CUstream_st*) {
  no_cuda();
}
InputGeometry preprocess_cuda_host(const PixelsView&, const LutView&, const OutputView&, int64_t,
                                   const PreprocessParams&) {
  no_cuda();
}
size_t preprocess_batch_cuda_workspace_bytes(const std::vector<PreprocessItem>&) { no_cuda(); }
std::vector<InputGeometry> preprocess_batch_cuda(const std::vector<PreprocessItem>&, const OutputView&, void*, size_t,
                                                 CUstream_st*) {
  no_cuda();
}
std::vector<InputGeometry> preprocess_batch_cuda_host(const std::vector<PreprocessItem>&, const OutputView&) {
  no_cuda();
}
#endif

namespace {

using binding::Crop;
using binding::geometry_dict;
using binding::lut_view;
using binding::output_view;
using binding::params_from;
using binding::pixels_view;
using binding::resize_mode;
using binding::Spec;
using binding::Window;

PreprocessItem item_from(const py::array& pixels, const py::object& lut, int64_t lut_first_value, const Spec& spec,
                         const Crop& crop, const Window& window) {
  PreprocessItem item;
  item.pixels = pixels_view(pixels);
  item.lut = lut_view(lut, lut_first_value, item.pixels);
  item.params = params_from(spec, crop, window);
  return item;
}

// items: a sequence of (pixels, lut or None, lut_first_value, crop or None, window or None).
std::vector<PreprocessItem> items_from(const py::sequence& images, const Spec& spec) {
  std::vector<PreprocessItem> items;
  items.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    try {
      const py::tuple image = py::cast<py::tuple>(images[i]);
      if (image.size() != 5) {
        throw std::invalid_argument("expected (pixels, lut, lut_first_value, crop, float_window); got " +
                                    std::to_string(image.size()) + " fields");
      }
      items.push_back(item_from(py::cast<py::array>(image[0]), image[1], py::cast<int64_t>(image[2]), spec,
                                py::cast<Crop>(image[3]), py::cast<Window>(image[4])));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument("image " + std::to_string(i) + ": " + error.what());
    } catch (const py::cast_error& error) {
      throw std::invalid_argument("image " + std::to_string(i) +
                                  ": expected (pixels array, lut array or None, int, (x, y, width, height) or None, "
                                  "(center, width, invert) or None); " + error.what());
    }
  }
  return items;
}

py::list geometry_list(const std::vector<InputGeometry>& geometries) {
  py::list list;
  for (const InputGeometry& g : geometries) list.append(geometry_dict(g));
  return list;
}

}  // namespace

void bind_preprocess(py::module_& m) {
  m.def(
      "resize_geometry",
      [](int64_t source_rows, int64_t source_columns, int64_t height, int64_t width, const std::string& resize,
         const Crop& crop) {
        PixelRegion region{0, 0, -1, -1};
        if (crop) std::tie(region.x, region.y, region.width, region.height) = *crop;
        return geometry_dict(resize_geometry(source_rows, source_columns, region, height, width, resize_mode(resize)));
      },
      py::arg("source_rows"), py::arg("source_columns"), py::arg("height"), py::arg("width"),
      py::arg("resize") = "letterbox", py::arg("crop") = py::none(),
      "Where the crop (x, y, width, height; None: the whole image) of a source_rows x source_columns image lands "
      "in a height x width model input: a dict with source_rows, source_columns, crop_x, crop_y, crop_width, "
      "crop_height, content_height, content_width, offset_y, offset_x, input_height, input_width (ints, pixels) and "
      "scale_y, scale_x (content / crop), the geometry every decode op takes.");

  const auto spec_of = [](int64_t height, int64_t width, int64_t channels, const std::string& dtype,
                          const std::string& resize, double pad_value, const std::vector<double>& mean,
                          const std::vector<double>& stddev) {
    return Spec{height, width, channels, dtype, resize, pad_value, mean, stddev};
  };

  m.def(
      "preprocess_cpu",
      [spec_of](const py::array& pixels, const py::object& lut, int64_t lut_first_value, py::array out, int64_t slot,
                int64_t height, int64_t width, int64_t channels, const std::string& dtype, const std::string& resize,
                double pad_value, const std::vector<double>& mean, const std::vector<double>& stddev, int threads,
                const Crop& crop, const Window& float_window) {
        const Spec spec = spec_of(height, width, channels, dtype, resize, pad_value, mean, stddev);
        const PreprocessItem item = item_from(pixels, lut, lut_first_value, spec, crop, float_window);
        const OutputView out_view = output_view(out);
        InputGeometry g;
        {
          py::gil_scoped_release release;
          g = preprocess_cpu(item.pixels, item.lut, out_view, slot, item.params, threads);
        }
        return geometry_dict(g);
      },
      py::arg("pixels"), py::arg("lut"), py::arg("lut_first_value"), py::arg("out"), py::arg("slot"), py::kw_only(),
      py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("dtype"), py::arg("resize"),
      py::arg("pad_value"), py::arg("mean"), py::arg("std"), py::arg("threads") = 0, py::arg("crop") = py::none(),
      py::arg("float_window") = py::none(),
      "Fused LUT -> crop -> resize -> normalise of pixels (uint8/uint16/int16 [rows, columns] with a float32 lut, "
      "or float32 [rows, columns] with lut None and float_window (center, width, invert)) into out[slot] "
      "(float32/float16 [N, channels, height, width]) on CPU threads (0: the default count). crop: (x, y, width, "
      "height) in source pixels, None for the whole image. Returns the resize geometry as a dict.");

  m.def(
      "preprocess_cuda_host",
      [spec_of](const py::array& pixels, const py::object& lut, int64_t lut_first_value, py::array out, int64_t slot,
                int64_t height, int64_t width, int64_t channels, const std::string& dtype, const std::string& resize,
                double pad_value, const std::vector<double>& mean, const std::vector<double>& stddev,
                const Crop& crop, const Window& float_window) {
        const Spec spec = spec_of(height, width, channels, dtype, resize, pad_value, mean, stddev);
        const PreprocessItem item = item_from(pixels, lut, lut_first_value, spec, crop, float_window);
        const OutputView out_view = output_view(out);
        InputGeometry g;
        {
          py::gil_scoped_release release;
          g = preprocess_cuda_host(item.pixels, item.lut, out_view, slot, item.params);
        }
        return geometry_dict(g);
      },
      py::arg("pixels"), py::arg("lut"), py::arg("lut_first_value"), py::arg("out"), py::arg("slot"), py::kw_only(),
      py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("dtype"), py::arg("resize"),
      py::arg("pad_value"), py::arg("mean"), py::arg("std"), py::arg("crop") = py::none(),
      py::arg("float_window") = py::none(),
      "preprocess_cpu's op run by the CUDA kernel on host arrays: copies pixels and lut to the current CUDA "
      "device, runs, waits and copies out[slot] back. Raises CudaError naming the CUDA error, or saying "
      "that the module was built without CUDA.");

  m.def(
      "preprocess_batch_cpu",
      [spec_of](const py::sequence& images, py::array out, int64_t height, int64_t width, int64_t channels,
                const std::string& dtype, const std::string& resize, double pad_value, const std::vector<double>& mean,
                const std::vector<double>& stddev, int threads) {
        const Spec spec = spec_of(height, width, channels, dtype, resize, pad_value, mean, stddev);
        const std::vector<PreprocessItem> items = items_from(images, spec);
        const OutputView out_view = output_view(out);
        std::vector<InputGeometry> geometries;
        {
          py::gil_scoped_release release;
          geometries = preprocess_batch_cpu(items, out_view, threads);
        }
        return geometry_list(geometries);
      },
      py::arg("images"), py::arg("out"), py::kw_only(), py::arg("height"), py::arg("width"), py::arg("channels"),
      py::arg("dtype"), py::arg("resize"), py::arg("pad_value"), py::arg("mean"), py::arg("std"),
      py::arg("threads") = 0,
      "preprocess_cpu for a batch: images[i] = (pixels, lut or None, lut_first_value, crop or None, float_window or "
      "None) goes to out[i], with all the images' rows shared out across the CPU threads. Returns the geometries.");

  m.def(
      "preprocess_batch_cuda_host",
      [spec_of](const py::sequence& images, py::array out, int64_t height, int64_t width, int64_t channels,
                const std::string& dtype, const std::string& resize, double pad_value, const std::vector<double>& mean,
                const std::vector<double>& stddev) {
        const Spec spec = spec_of(height, width, channels, dtype, resize, pad_value, mean, stddev);
        const std::vector<PreprocessItem> items = items_from(images, spec);
        const OutputView out_view = output_view(out);
        std::vector<InputGeometry> geometries;
        {
          py::gil_scoped_release release;
          geometries = preprocess_batch_cuda_host(items, out_view);
        }
        return geometry_list(geometries);
      },
      py::arg("images"), py::arg("out"), py::kw_only(), py::arg("height"), py::arg("width"), py::arg("channels"),
      py::arg("dtype"), py::arg("resize"), py::arg("pad_value"), py::arg("mean"), py::arg("std"),
      "preprocess_batch_cpu's batch run by the CUDA kernel (one enqueue per image on one stream) on host arrays.");
}

}  // namespace radedge
