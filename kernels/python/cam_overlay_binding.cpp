// Bindings of the CAM overlay op. On numpy arrays (cam_overlay_cpu, cam_overlay_cuda_host): the
// arrays are checked here (dtype, rank, layout, writeability) and turned into the views of
// radedge/cam_overlay.h; the op's own checks (check_cam_overlay_args, check_cam_finite) then run
// in the backend. On CUDA arrays (cam_overlay_cuda): the device-pointer entry, zero-copy into the
// caller's overlay, following the steps of device_array.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"
#include "device_checks.h"
#include "geometry_args.h"
#include "head_grid_binding.h"
#include "radedge/cam_overlay.h"
#include "radedge/errors.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
namespace {
[[noreturn]] void no_cuda() {
  throw CudaError(
      "cam_overlay (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build "
      "time); cam_overlay runs on: cpu. Rebuild with nvcc on PATH to get the CUDA op.");
}
}  // namespace

size_t cam_overlay_cuda_workspace_bytes(const DisplayView&) { no_cuda(); }
void cam_overlay_cuda(const CamView&, const DisplayView&, const OverlayView&, const CamOverlayParams&, void*, size_t,
                      CUstream_st*) {
  no_cuda();
}
CamRange cam_overlay_cuda_host(const CamView&, const DisplayView&, const OverlayView&, const CamOverlayParams&) {
  no_cuda();
}
#endif

namespace {

CamView cam_view(const py::array& cam) {
  constexpr const char* kShape = "[h, w]";
  if (cam.ndim() != 2) {
    throw std::invalid_argument("cam must be float32 or float16 [h, w] (one class's map); got " +
                                binding::describe(cam));
  }
  CamView view;
  view.type = binding::map_type(cam, "cam", kShape);
  binding::require_c_contiguous(cam, "cam", kShape);
  view.data = cam.data();
  view.height = cam.shape(0);
  view.width = cam.shape(1);
  return view;
}

DisplayView display_view(const py::array& display) {
  if (display.ndim() != 2 || !binding::is_uint8(display)) {
    throw std::invalid_argument("display must be a grey uint8 [H, W] image; got " + binding::describe(display));
  }
  binding::require_c_contiguous(display, "display", "[H, W]");
  DisplayView view;
  view.data = static_cast<const uint8_t*>(display.data());
  view.rows = display.shape(0);
  view.columns = display.shape(1);
  return view;
}

OverlayView overlay_view(py::array& out) {
  if (out.ndim() != 3 || out.shape(2) != 3 || !binding::is_uint8(out)) {
    throw std::invalid_argument("out must be uint8 [H, W, 3] (RGB); got " + binding::describe(out));
  }
  binding::require_c_contiguous(out, "out", "[H, W, 3]");
  if (!out.writeable()) throw std::invalid_argument("out is read-only; pass a writeable array");
  OverlayView view;
  view.data = static_cast<uint8_t*>(out.mutable_data());
  view.rows = out.shape(0);
  view.columns = out.shape(1);
  return view;
}

Colormap colormap_from(const py::object& colormap) {
  if (py::isinstance<py::str>(colormap)) {
    const std::string name = colormap.cast<std::string>();
    if (name == "turbo") return builtin_colormap(ColormapName::kTurbo);
    if (name == "jet") return builtin_colormap(ColormapName::kJet);
    throw std::invalid_argument("colormap must be 'turbo', 'jet' or a uint8 [256, 3] RGB table; got '" + name + "'");
  }
  if (!py::isinstance<py::array>(colormap)) {
    throw std::invalid_argument("colormap must be 'turbo', 'jet' or a uint8 [256, 3] RGB table; got " +
                                std::string(py::repr(colormap)));
  }
  const py::array table = colormap.cast<py::array>();
  if (table.ndim() != 2 || table.shape(0) != 256 || table.shape(1) != 3 || !binding::is_uint8(table)) {
    throw std::invalid_argument("a colormap table must be uint8 [256, 3] (RGB, index 0 for the lowest value); got " +
                                binding::describe(table));
  }
  binding::require_c_contiguous(table, "colormap", "[256, 3]");
  Colormap map;
  std::memcpy(map.rgb, table.data(), sizeof map.rgb);
  return map;
}

CamOverlayParams params_from(const py::object& geometry, const py::object& colormap, double alpha, double floor,
                             const std::string& normalise, double low, double high) {
  CamOverlayParams params;
  params.geometry = binding::geometry_from(geometry);
  params.colormap = colormap_from(colormap);
  if (normalise == "minmax") {
    params.normalise = CamNormalise::kMinMax;
  } else if (normalise == "fixed") {
    params.normalise = CamNormalise::kFixed;
  } else {
    throw std::invalid_argument("normalise must be 'minmax' or 'fixed'; got '" + normalise + "'");
  }
  // Doubles that do not survive the float conversion are refused by the op's checks as
  // the infinities they become.
  params.low = static_cast<float>(low);
  params.high = static_cast<float>(high);
  params.alpha = alpha;
  params.floor = floor;
  return params;
}

using cuda::kWorkspaceAlignment;

const DeviceViewRequirements kDeviceCam{false, {kFloat32, kFloat16}, 2, Layout::kCContiguous,
                                        "a C-contiguous float32 or float16 [h, w] map (one class's)"};
const DeviceViewRequirements kDeviceDisplay{false, {kUint8}, 2, Layout::kCContiguous,
                                            "a C-contiguous grey uint8 [H, W] image"};
const DeviceViewRequirements kDeviceOverlay{true, {kUint8}, 3, Layout::kCContiguous,
                                            "a C-contiguous uint8 [H, W, 3] RGB image"};
const DeviceViewRequirements kDeviceWorkspace{true, {kUint8}, 1, Layout::kCContiguous,
                                              "a uint8 [bytes] device buffer of cam_overlay_cuda_workspace_bytes(H, "
                                              "W) bytes or more"};

}  // namespace

void bind_cam_overlay(py::module_& m) {
  m.def(
      "colormap_table",
      [](const std::string& name) {
        const py::object named = py::str(name);
        const Colormap map = colormap_from(named);
        py::array_t<uint8_t> table({256, 3});
        std::memcpy(table.mutable_data(), map.rgb, sizeof map.rgb);
        return table;
      },
      py::arg("name"), "The built-in colour map 'turbo' or 'jet' as uint8 [256, 3] RGB, index 0 for the lowest value.");

  m.def(
      "cam_overlay_cpu",
      [](const py::array& cam, const py::array& display, py::array out, const py::object& geometry,
         const py::object& colormap, double alpha, double floor, const std::string& normalise, double low,
         double high, int threads) {
        const CamView cam_in = cam_view(cam);
        const DisplayView display_in = display_view(display);
        const OverlayView out_view = overlay_view(out);
        const CamOverlayParams params = params_from(geometry, colormap, alpha, floor, normalise, low, high);
        CamRange range;
        {
          py::gil_scoped_release release;
          range = cam_overlay_cpu(cam_in, display_in, out_view, params, threads);
        }
        return py::make_tuple(range.low, range.high);
      },
      py::arg("cam"), py::arg("display"), py::arg("out"), py::kw_only(), py::arg("geometry"), py::arg("colormap"),
      py::arg("alpha"), py::arg("floor"), py::arg("normalise"), py::arg("low") = 0.0, py::arg("high") = 1.0,
      py::arg("threads") = 0,
      (std::string("Overlay of cam (float32/float16 [h, w] over the model input) on display (uint8 [H, W], the "
                   "content region) into out (uint8 [H, W, 3], RGB), on CPU threads (0: the default count). "
                   "normalise 'minmax' or 'fixed' (low, high). Returns the (low, high) range used. ") +
       binding::kGeometryDoc)
          .c_str());

  m.def(
      "cam_overlay_cuda_host",
      [](const py::array& cam, const py::array& display, py::array out, const py::object& geometry,
         const py::object& colormap, double alpha, double floor, const std::string& normalise, double low,
         double high) {
        const CamView cam_in = cam_view(cam);
        const DisplayView display_in = display_view(display);
        const OverlayView out_view = overlay_view(out);
        const CamOverlayParams params = params_from(geometry, colormap, alpha, floor, normalise, low, high);
        CamRange range;
        {
          py::gil_scoped_release release;
          range = cam_overlay_cuda_host(cam_in, display_in, out_view, params);
        }
        return py::make_tuple(range.low, range.high);
      },
      py::arg("cam"), py::arg("display"), py::arg("out"), py::kw_only(), py::arg("geometry"), py::arg("colormap"),
      py::arg("alpha"), py::arg("floor"), py::arg("normalise"), py::arg("low") = 0.0, py::arg("high") = 1.0,
      "cam_overlay_cpu's op run by the CUDA kernels on host arrays: copies cam and display to the current CUDA "
      "device, runs, waits and copies the overlay back. Raises RuntimeError naming the CUDA error, or saying that "
      "the module was built without CUDA.");

  m.def(
      "cam_overlay_cuda",
      [](py::handle cam, py::handle display, py::handle out, const py::object& geometry, const py::object& colormap,
         double alpha, double floor, const std::string& normalise, double low, double high, py::handle workspace,
         py::handle stream) {
        constexpr const char* op = "cam_overlay";
        const std::shared_ptr<cuda::Stream> on = stream_argument(stream, op);
        // Every argument is checked from its metadata before CUDA is touched.
        binding::DeviceArgs args(*on);
        const DeviceView& cam_in = args.add(cam, "cam", kDeviceCam);
        const DeviceView& display_in = args.add(display, "display", kDeviceDisplay);
        const DeviceView& out_in = args.add(out, "out", kDeviceOverlay);
        const DeviceView* workspace_in =
            workspace.is_none() ? nullptr : &args.add(workspace, "workspace", kDeviceWorkspace);

        CamView cam_view;
        cam_view.data = cam_in.data;
        cam_view.type = cuda::same_dtype(cam_in.dtype, kFloat32) ? MapType::kFloat32 : MapType::kFloat16;
        cam_view.height = cam_in.shape[0];
        cam_view.width = cam_in.shape[1];
        DisplayView display_view;
        display_view.data = static_cast<const uint8_t*>(display_in.data);
        display_view.rows = display_in.shape[0];
        display_view.columns = display_in.shape[1];
        binding::require_shape(out_in, {display_view.rows, display_view.columns, 3}, "RGB for every display pixel");
        OverlayView out_view;
        out_view.data = static_cast<uint8_t*>(out_in.data);
        out_view.rows = out_in.shape[0];
        out_view.columns = out_in.shape[1];
        const CamOverlayParams params = params_from(geometry, colormap, alpha, floor, normalise, low, high);
        check_cam_overlay_args(cam_view, display_view, out_view, params);
        for (const DeviceView* argument : args.all()) binding::require_aligned(*argument);
        if (workspace_in) binding::require_aligned(*workspace_in, kWorkspaceAlignment);
        std::vector<const DeviceView*> all;
        for (const DeviceView* argument : args.all()) all.push_back(argument);
        binding::refuse_overlaps({&out_in}, all);

        require_cuda(op);
        const int device = prepare_device_views(args.all(), *on, op);
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device, op);
          if (workspace_in) {
            cam_overlay_cuda(cam_view, display_view, out_view, params, workspace_in->data,
                             static_cast<size_t>(workspace_in->shape[0]), on->handle());
          } else {
            const size_t bytes = cam_overlay_cuda_workspace_bytes(display_view);
            // Given back on the stream after the op, so nothing waits for it here.
            const cuda::ScratchBuffer scratch(bytes, kWorkspaceAlignment, *on, op);
            cam_overlay_cuda(cam_view, display_view, out_view, params, scratch.get(), bytes, on->handle());
          }
        }
      },
      py::arg("cam"), py::arg("display"), py::arg("out"), py::kw_only(), py::arg("geometry"), py::arg("colormap"),
      py::arg("alpha"), py::arg("floor"), py::arg("normalise"), py::arg("low") = 0.0, py::arg("high") = 1.0,
      py::arg("workspace") = py::none(), py::arg("stream") = py::none(),
      "cam_overlay_cpu's op on CUDA arrays, zero-copy: cam (float32/float16 [h, w]) and display (uint8 [H, W]) in, "
      "the caller's out (uint8 [H, W, 3], RGB) written, all C-contiguous. The CAM values are not checked on the "
      "device: a display pixel whose bilinear sample reaches a NaN or infinite cell is mostly a NaN sample, drawn "
      "with t = 0 (the colour map's first entry, or grey where floor > 0) and left out of the min-max range; an "
      "infinite sample stretches the range to infinity, which draws every pixel with t = 0 (the host-array "
      "entries refuse both). Every array is any exporter's "
      "__cuda_array_interface__ / DLPack CUDA array on the stream's device. Enqueued on `stream` (a radedge Stream; "
      "None: the legacy default stream) and not waited for. `workspace`: a uint8 device buffer of "
      "cam_overlay_cuda_workspace_bytes(H, W) bytes, 256-byte aligned, keeps the call allocation-free (for CUDA "
      "graphs); None takes one from CUDA's stream-ordered pool. Returns None (the min-max range stays on the "
      "device).");

  m.def(
      "cam_overlay_cuda_workspace_bytes",
      [](int64_t rows, int64_t columns) {
        DisplayView display;
        display.rows = rows;
        display.columns = columns;
        return cam_overlay_cuda_workspace_bytes(display);
      },
      py::arg("rows"), py::arg("columns"),
      "Bytes of device workspace cam_overlay_cuda needs for a rows x columns display.");
}

}  // namespace radedge
