// Bindings of the device-pointer preprocess entries (preprocess_cuda and preprocess_batch_cuda in
// radedge/preprocess.h) for CUDA arrays from any exporter (radedge.cuda.DeviceArray, torch, CuPy,
// pycuda, DLPack capsules), zero-copy, enqueued on the caller's stream. The host-array bindings are
// in preprocess_binding.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"
#include "geometry_args.h"
#include "preprocess_args.h"
#include "radedge/cuda_memory.h"
#include "radedge/preprocess.h"

namespace py = pybind11;

namespace radedge {
namespace {

constexpr const char* kOp = "preprocess";
// cudaMalloc's alignment, which preprocess_cuda requires of its workspace.
using cuda::kWorkspaceAlignment;

const DeviceViewRequirements kPixels{false, {kUint8, kUint16, kInt16, kFloat32}, 2, Layout::kRowsPadded,
                                     "uint8, uint16 or int16 [rows, columns] stored values, or float32 values "
                                     "(rows may be padded, columns contiguous)"};
const DeviceViewRequirements kLut{false, {kFloat32}, 1, Layout::kCContiguous, "a contiguous float32 [entries] table"};
const DeviceViewRequirements kOut{true, {kFloat32, kFloat16}, 4, Layout::kCContiguous,
                                  "a C-contiguous float32 or float16 [N, C, H, W] tensor"};
const DeviceViewRequirements kWorkspace{true, {kUint8}, 1, Layout::kCContiguous,
                                        "a uint8 [bytes] device buffer of preprocess_cuda_workspace_bytes(...) bytes "
                                        "or more"};
const DeviceViewRequirements kBatchWorkspace{true, {kUint8}, 1, Layout::kCContiguous,
                                             "a uint8 [bytes] device buffer of "
                                             "preprocess_batch_cuda_workspace_bytes(...) bytes or more"};

PixelsView pixels_view(const DeviceView& view) {
  PixelsView pixels;
  pixels.data = view.data;
  pixels.type = cuda::same_dtype(view.dtype, kUint8)    ? PixelType::kUint8
                : cuda::same_dtype(view.dtype, kUint16) ? PixelType::kUint16
                : cuda::same_dtype(view.dtype, kInt16)  ? PixelType::kInt16
                                                        : PixelType::kFloat32;
  pixels.rows = view.shape[0];
  pixels.columns = view.shape[1];
  pixels.row_stride = view.element_stride(0);
  return pixels;
}

LutView lut_view(const DeviceView& view, int64_t lut_first_value) {
  LutView lut;
  lut.data = static_cast<const float*>(view.data);
  lut.size = view.shape[0];
  lut.first_value = lut_first_value;
  return lut;
}

OutputView output_view(const DeviceView& view) {
  OutputView out;
  out.data = view.data;
  out.type = cuda::same_dtype(view.dtype, kFloat32) ? OutputType::kFloat32 : OutputType::kFloat16;
  out.batch = view.shape[0];
  out.channels = view.shape[1];
  out.height = view.shape[2];
  out.width = view.shape[3];
  return out;
}

// One image of a batch call: its arrays as device views (alive for the call) and its params.
struct BatchImage {
  DeviceView pixels;
  DeviceView lut;
  bool has_lut = false;
  int64_t lut_first_value = 0;
  PreprocessParams params;
};

// images[i] = (pixels, lut or None, lut_first_value, crop or None, float_window or None), read from
// the metadata. `names` holds the argument names the views point to ("images[3].pixels").
std::vector<BatchImage> batch_images(const py::sequence& images, const binding::Spec& spec, const cuda::Stream& stream,
                                     std::deque<std::string>& names) {
  std::vector<BatchImage> batch(images.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::string at = "images[" + std::to_string(i) + "]";
    py::tuple image;
    binding::Crop crop;
    binding::Window window;
    const py::object item = images[i];
    if (!py::isinstance<py::tuple>(item) && !py::isinstance<py::list>(item)) {
      throw std::invalid_argument(at + " must be a (pixels, lut, lut_first_value, crop, float_window) tuple; got " +
                                  std::string(py::str(py::type::of(item).attr("__name__"))));
    }
    try {
      image = py::tuple(item);
      if (image.size() != 5) {
        throw std::invalid_argument(at + " must be (pixels, lut, lut_first_value, crop, float_window); got " +
                                    std::to_string(image.size()) + " fields");
      }
      batch[i].lut_first_value = py::cast<int64_t>(image[2]);
      crop = py::cast<binding::Crop>(image[3]);
      window = py::cast<binding::Window>(image[4]);
    } catch (const py::cast_error& error) {
      throw std::invalid_argument(at + ": expected (pixels CUDA array, lut CUDA array or None, int, (x, y, width, "
                                  "height) or None, (center, width, invert) or None); " + error.what());
    }
    batch[i].params = binding::params_from(spec, crop, window);
    names.push_back(at + ".pixels");
    batch[i].pixels = as_device_view(image[0], names.back().c_str(), kPixels, stream);
    batch[i].has_lut = !image[1].is_none();
    if (batch[i].has_lut) {
      names.push_back(at + ".lut");
      batch[i].lut = as_device_view(image[1], names.back().c_str(), kLut, stream);
    }
  }
  return batch;
}

}  // namespace

void bind_preprocess_cuda(py::module_& m) {
  m.def(
      "preprocess_cuda",
      [](py::handle pixels, py::handle lut, int64_t lut_first_value, py::handle out, int64_t slot, int64_t height,
         int64_t width, int64_t channels, const std::string& dtype, const std::string& resize, double pad_value,
         const std::vector<double>& mean, const std::vector<double>& stddev, py::handle workspace, py::handle stream,
         const binding::Crop& crop, const binding::Window& float_window) {
        const PreprocessParams params = binding::params_from(
            binding::Spec{height, width, channels, dtype, resize, pad_value, mean, stddev}, crop, float_window);
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, kOp);
        // Every argument is checked from its metadata before CUDA is touched.
        DeviceView pixels_in = as_device_view(pixels, "pixels", kPixels, *on);
        // float32 pixels are mapped by the float window and take no table.
        const bool has_lut = !lut.is_none();
        DeviceView lut_in;
        if (has_lut) lut_in = as_device_view(lut, "lut", kLut, *on);
        DeviceView out_in = as_device_view(out, "out", kOut, *on);
        const bool own_workspace = workspace.is_none();
        DeviceView workspace_in;
        if (!own_workspace) workspace_in = as_device_view(workspace, "workspace", kWorkspace, *on);
        const PixelsView pixels_arg = pixels_view(pixels_in);
        const LutView lut_arg = has_lut ? lut_view(lut_in, lut_first_value) : LutView{};
        const OutputView out_arg = output_view(out_in);
        check_preprocess_args(pixels_arg, lut_arg, out_arg, slot, params);

        require_cuda(kOp);
        std::vector<DeviceView*> views{&pixels_in, &out_in};
        if (has_lut) views.push_back(&lut_in);
        if (!own_workspace) views.push_back(&workspace_in);
        const int device = prepare_device_views(views, *on, kOp);
        InputGeometry geometry;
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device, kOp);
          if (own_workspace) {
            const size_t bytes = preprocess_cuda_workspace_bytes(pixels_arg.rows, pixels_arg.columns, params);
            // Given back on the stream after the op, so nothing waits for it here.
            const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, *on, kOp);
            geometry = preprocess_cuda(pixels_arg, lut_arg, out_arg, slot, params, scratch.get(), bytes, on->handle());
          } else {
            geometry = preprocess_cuda(pixels_arg, lut_arg, out_arg, slot, params, workspace_in.data,
                                       static_cast<size_t>(workspace_in.shape[0]), on->handle());
          }
        }
        return binding::geometry_dict(geometry);
      },
      py::arg("pixels"), py::arg("lut"), py::arg("lut_first_value"), py::arg("out"), py::arg("slot"), py::kw_only(),
      py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("dtype"), py::arg("resize"),
      py::arg("pad_value"), py::arg("mean"), py::arg("std"), py::arg("workspace") = py::none(),
      py::arg("stream") = py::none(), py::arg("crop") = py::none(), py::arg("float_window") = py::none(),
      "preprocess_cpu's op on CUDA arrays, zero-copy: pixels (uint8/uint16/int16 [rows, columns], rows may be "
      "padded; or float32 values with lut None and float_window (center, width, invert) -- on the device their "
      "finiteness is the caller's to ensure), lut (float32 [entries]) and out (float32/float16 [N, channels, height, width], C-contiguous) are "
      "any exporter's __cuda_array_interface__ / DLPack arrays on the stream's device. Enqueued on `stream` (a "
      "radedge Stream; None: the legacy default stream) and not waited for. `workspace`: a uint8 device buffer of "
      "preprocess_cuda_workspace_bytes(...) bytes, 256-byte aligned, keeps the call allocation-free (for CUDA "
      "graphs); None takes one from CUDA's stream-ordered pool. Returns the resize geometry as a dict.");

  m.def(
      "preprocess_cuda_workspace_bytes",
      [](int64_t source_rows, int64_t source_columns, int64_t height, int64_t width, const std::string& resize,
         const binding::Crop& crop) {
        const PreprocessParams params = binding::params_from(
            binding::Spec{height, width, 1, "float32", resize, 0.0, {0.0}, {1.0}}, crop, std::nullopt);
        return preprocess_cuda_workspace_bytes(source_rows, source_columns, params);
      },
      py::arg("source_rows"), py::arg("source_columns"), py::kw_only(), py::arg("height"), py::arg("width"),
      py::arg("resize") = "letterbox", py::arg("crop") = py::none(),
      "Bytes of device workspace preprocess_cuda needs for a source_rows x source_columns image into height x "
      "width.");

  m.def(
      "preprocess_batch_cuda",
      [](const py::sequence& images, py::handle out, int64_t height, int64_t width, int64_t channels,
         const std::string& dtype, const std::string& resize, double pad_value, const std::vector<double>& mean,
         const std::vector<double>& stddev, py::handle workspace, py::handle stream) {
        constexpr const char* kBatchOp = "preprocess_batch";
        const binding::Spec spec{height, width, channels, dtype, resize, pad_value, mean, stddev};
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, kBatchOp);
        // Every argument is checked from its metadata before CUDA is touched.
        std::deque<std::string> names;
        std::vector<BatchImage> batch = batch_images(images, spec, *on, names);
        DeviceView out_in = as_device_view(out, "out", kOut, *on);
        const bool own_workspace = workspace.is_none();
        DeviceView workspace_in;
        if (!own_workspace) workspace_in = as_device_view(workspace, "workspace", kBatchWorkspace, *on);
        std::vector<PreprocessItem> items;
        items.reserve(batch.size());
        for (const BatchImage& image : batch) {
          items.push_back(PreprocessItem{pixels_view(image.pixels),
                                         image.has_lut ? lut_view(image.lut, image.lut_first_value) : LutView{},
                                         image.params});
        }
        const OutputView out_arg = output_view(out_in);
        check_preprocess_batch_args(items, out_arg);
        std::vector<const DeviceView*> inputs;
        for (const BatchImage& image : batch) {
          inputs.push_back(&image.pixels);
          if (image.has_lut) inputs.push_back(&image.lut);
        }
        std::vector<const DeviceView*> written{&out_in};
        if (!own_workspace) written.push_back(&workspace_in);
        refuse_overlaps(written, inputs, kBatchOp);

        require_cuda(kBatchOp);
        std::vector<DeviceView*> views{&out_in};
        for (BatchImage& image : batch) {
          views.push_back(&image.pixels);
          if (image.has_lut) views.push_back(&image.lut);
        }
        if (!own_workspace) views.push_back(&workspace_in);
        const int device = prepare_device_views(views, *on, kBatchOp);
        std::vector<InputGeometry> geometries;
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device, kBatchOp);
          if (own_workspace) {
            const size_t bytes = preprocess_batch_cuda_workspace_bytes(items);
            // Given back on the stream after the op, so nothing waits for it here.
            const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, *on, kBatchOp);
            geometries = preprocess_batch_cuda(items, out_arg, scratch.get(), bytes, on->handle());
          } else {
            geometries = preprocess_batch_cuda(items, out_arg, workspace_in.data,
                                               static_cast<size_t>(workspace_in.shape[0]), on->handle());
          }
        }
        py::list result;
        for (const InputGeometry& g : geometries) result.append(binding::geometry_dict(g));
        return result;
      },
      py::arg("images"), py::arg("out"), py::kw_only(), py::arg("height"), py::arg("width"), py::arg("channels"),
      py::arg("dtype"), py::arg("resize"), py::arg("pad_value"), py::arg("mean"), py::arg("std"),
      py::arg("workspace") = py::none(), py::arg("stream") = py::none(),
      "preprocess_batch_cpu's batch on CUDA arrays, zero-copy: images[i] = (pixels, lut or None, lut_first_value, "
      "crop or None, float_window or None), with pixels and lut CUDA arrays as preprocess_cuda takes them, goes to "
      "out[i] (out: float32/float16 [N >= len(images), channels, height, width], C-contiguous). One enqueue per "
      "image on `stream` (a radedge Stream; None: the legacy default stream), not waited for. `workspace`: a uint8 "
      "device buffer of preprocess_batch_cuda_workspace_bytes(...) bytes, 256-byte aligned, keeps the call "
      "allocation-free (for CUDA graphs); None takes one from CUDA's stream-ordered pool. Returns the geometries.");

  m.def(
      "preprocess_batch_cuda_workspace_bytes",
      [](const std::vector<std::tuple<int64_t, int64_t, binding::Crop>>& sources, int64_t height, int64_t width,
         const std::string& resize) {
        std::vector<PreprocessItem> items;
        items.reserve(sources.size());
        for (const auto& [rows, columns, crop] : sources) {
          PreprocessItem item;
          item.pixels.rows = rows;
          item.pixels.columns = columns;
          item.params = binding::params_from(binding::Spec{height, width, 1, "float32", resize, 0.0, {0.0}, {1.0}},
                                             crop, std::nullopt);
          items.push_back(item);
        }
        return preprocess_batch_cuda_workspace_bytes(items);
      },
      py::arg("sources"), py::kw_only(), py::arg("height"), py::arg("width"), py::arg("resize") = "letterbox",
      "Bytes of device workspace preprocess_batch_cuda needs for images of sources[i] = (rows, columns, crop or "
      "None) into height x width: the sum of each image's preprocess_cuda_workspace_bytes.");
}

}  // namespace radedge
