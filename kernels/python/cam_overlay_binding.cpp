// Bindings of the CAM overlay op: the numpy arrays are checked here (dtype, rank, layout,
// writeability) and turned into the views of radedge/cam_overlay.h; the op's own checks
// (check_cam_overlay_args, check_cam_finite) then run in the backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>
#include <string>

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

CamOverlayParams params_from(const py::dict& placement, const py::object& colormap, double alpha, double floor,
                             const std::string& normalise, double low, double high) {
  CamOverlayParams params;
  params.placement = binding::placement_from(placement);
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
      [](const py::array& cam, const py::array& display, py::array out, const py::dict& placement,
         const py::object& colormap, double alpha, double floor, const std::string& normalise, double low,
         double high, int threads) {
        const CamView cam_in = cam_view(cam);
        const DisplayView display_in = display_view(display);
        const OverlayView out_view = overlay_view(out);
        const CamOverlayParams params = params_from(placement, colormap, alpha, floor, normalise, low, high);
        CamRange range;
        {
          py::gil_scoped_release release;
          range = cam_overlay_cpu(cam_in, display_in, out_view, params, threads);
        }
        return py::make_tuple(range.low, range.high);
      },
      py::arg("cam"), py::arg("display"), py::arg("out"), py::kw_only(), py::arg("placement"), py::arg("colormap"),
      py::arg("alpha"), py::arg("floor"), py::arg("normalise"), py::arg("low") = 0.0, py::arg("high") = 1.0,
      py::arg("threads") = 0,
      "Overlay of cam (float32/float16 [h, w] over the model input) on display (uint8 [H, W], the content region) "
      "into out (uint8 [H, W, 3], RGB), on CPU threads (0: the default count). normalise 'minmax' or 'fixed' "
      "(low, high). Returns the (low, high) range used.");

  m.def(
      "cam_overlay_cuda_host",
      [](const py::array& cam, const py::array& display, py::array out, const py::dict& placement,
         const py::object& colormap, double alpha, double floor, const std::string& normalise, double low,
         double high) {
        const CamView cam_in = cam_view(cam);
        const DisplayView display_in = display_view(display);
        const OverlayView out_view = overlay_view(out);
        const CamOverlayParams params = params_from(placement, colormap, alpha, floor, normalise, low, high);
        CamRange range;
        {
          py::gil_scoped_release release;
          range = cam_overlay_cuda_host(cam_in, display_in, out_view, params);
        }
        return py::make_tuple(range.low, range.high);
      },
      py::arg("cam"), py::arg("display"), py::arg("out"), py::kw_only(), py::arg("placement"), py::arg("colormap"),
      py::arg("alpha"), py::arg("floor"), py::arg("normalise"), py::arg("low") = 0.0, py::arg("high") = 1.0,
      "cam_overlay_cpu's op run by the CUDA kernels on host arrays: copies cam and display to the current CUDA "
      "device, runs, waits and copies the overlay back. Raises RuntimeError naming the CUDA error, or saying that "
      "the module was built without CUDA.");
}

}  // namespace radedge
