// radedge._kernels: the pybind11 edge of the native ops. Arguments are validated here,
// before any native code sees them, and the GIL is released while an op runs.
#include <pybind11/pybind11.h>

#include <string>
#include <thread>

#include "radedge/device.h"
#include "radedge/errors.h"

namespace py = pybind11;

namespace radedge {
#ifndef RADEDGE_WITH_CUDA
int cuda_device_count(std::string* why) {
  if (why) *why = "radedge._kernels was built without CUDA (no CUDA compiler was found at build time)";
  return 0;
}
#endif

void bind_preprocess(py::module_& m);  // preprocess_binding.cpp
void bind_cuda(py::module_& m);  // cuda_binding.cpp
void bind_preprocess_cuda(py::module_& m);  // preprocess_cuda_binding.cpp
void bind_mask_decode(py::module_& m);  // mask_decode_binding.cpp
void bind_heatmap_peaks(py::module_& m);  // heatmap_peaks_binding.cpp
void bind_cam_overlay(py::module_& m);  // cam_overlay_binding.cpp
void bind_detection(py::module_& m);   // detection_binding.cpp
void bind_detection_cuda(py::module_& m);  // detection_cuda_binding.cpp
void bind_histogram(py::module_& m);   // histogram_binding.cpp
}  // namespace radedge

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "radedge native pre- and post-processing ops (CPU always, CUDA when built with it)";
  py::register_exception<radedge::CudaError>(m, "CudaError", PyExc_RuntimeError);

  m.def("build_info", [] {
    py::dict info;
    info["version"] = RADEDGE_VERSION;
#ifdef RADEDGE_WITH_CUDA
    info["cuda"] = true;
    info["cuda_architectures"] = RADEDGE_CUDA_ARCHITECTURES;
#else
    info["cuda"] = false;
    info["cuda_architectures"] = "";
#endif
    info["hardware_threads"] = std::thread::hardware_concurrency();
    return info;
  }, "How this module was built: version, whether CUDA ops are compiled in, for which GPUs.");

  m.def("cuda_device_count", [] {
    std::string why;
    const int count = radedge::cuda_device_count(&why);
    return py::make_tuple(count, why);
  }, "(count, why): visible CUDA devices, and the reason when there are none.");

  radedge::bind_preprocess(m);
  radedge::bind_cuda(m);
  radedge::bind_preprocess_cuda(m);
  radedge::bind_mask_decode(m);
  radedge::bind_heatmap_peaks(m);
  radedge::bind_cam_overlay(m);
  radedge::bind_detection(m);
  radedge::bind_detection_cuda(m);
  radedge::bind_histogram(m);
}
