// radedge._kernels: the pybind11 edge of the native ops. Arguments are validated here,
// before any native code sees them, and the GIL is released while an op runs.
#include <pybind11/pybind11.h>

#include <string>
#include <thread>

#include "device_array.h"
#include "radedge/cuda_memory.h"
#include "radedge/device.h"
#include "radedge/errors.h"

namespace py = pybind11;

namespace radedge {
#ifndef RADEDGE_WITH_CUDA
int cuda_device_count(std::string* why) {
  if (why) *why = "radedge._kernels was built without CUDA (no CUDA compiler was found at build time)";
  return 0;
}
CudaDeviceProperties cuda_device_properties(int) {
  throw CudaError("cuda_device_properties (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was "
                  "found at build time); rebuild with nvcc on PATH");
}
#endif

void bind_geometry(py::module_& m);  // geometry_args.cpp
void bind_preprocess(py::module_& m);  // preprocess_binding.cpp
void bind_cuda(py::module_& m);  // cuda_binding.cpp
void bind_preprocess_cuda(py::module_& m);  // preprocess_cuda_binding.cpp
void bind_mask_decode(py::module_& m);  // mask_decode_binding.cpp
void bind_mask_decode_cuda(py::module_& m);  // mask_decode_cuda_binding.cpp
void bind_heatmap_peaks(py::module_& m);  // heatmap_peaks_binding.cpp
void bind_cam_overlay(py::module_& m);  // cam_overlay_binding.cpp
void bind_detection(py::module_& m);   // detection_binding.cpp
void bind_detection_cuda(py::module_& m);  // detection_cuda_binding.cpp
void bind_histogram(py::module_& m);   // histogram_binding.cpp
void bind_histogram_cuda(py::module_& m);   // histogram_cuda_binding.cpp
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
#ifdef RADEDGE_CUDA_EMULATION
    info["cuda_emulation"] = true;  // the CUDA ops run on the CPU emulator: a test build
#else
    info["cuda_emulation"] = false;
#endif
    info["hardware_threads"] = std::thread::hardware_concurrency();
    return info;
  }, "How this module was built: version, whether CUDA ops are compiled in, for which GPUs.");

  m.def("cuda_device_count", [] {
    std::string why;
    const int count = radedge::cuda_device_count(&why);
    return py::make_tuple(count, why);
  }, "(count, why): visible CUDA devices, and the reason when there are none.");

  m.def(
      "cuda_device_properties",
      [](int device) {
        radedge::require_cuda("cuda_device_properties");
        radedge::CudaDeviceProperties p;
        {
          py::gil_scoped_release release;
          p = radedge::cuda_device_properties(device);
        }
        py::dict d;
        d["device"] = p.device;
        d["name"] = p.name;
        d["compute_capability"] = py::make_tuple(p.compute_major, p.compute_minor);
        d["multiprocessors"] = p.multiprocessors;
        d["total_memory_bytes"] = p.total_memory_bytes;
        d["memory_clock_khz"] = p.memory_clock_khz;
        d["memory_bus_width_bits"] = p.memory_bus_width_bits;
        d["driver_version"] = p.driver_version;
        d["runtime_version"] = p.runtime_version;
        return d;
      },
      py::arg("device") = -1,
      "Properties of a CUDA device (-1: the current one): name, compute_capability (major, minor), "
      "multiprocessors, total_memory_bytes, memory_clock_khz (peak; 0 where unreported), memory_bus_width_bits, "
      "driver_version and runtime_version (CUDA's 1000 * major + 10 * minor).");

  radedge::bind_geometry(m);
  radedge::bind_preprocess(m);
  radedge::bind_cuda(m);
  radedge::bind_preprocess_cuda(m);
  radedge::bind_mask_decode(m);
  radedge::bind_mask_decode_cuda(m);
  radedge::bind_heatmap_peaks(m);
  radedge::bind_cam_overlay(m);
  radedge::bind_detection(m);
  radedge::bind_detection_cuda(m);
  radedge::bind_histogram(m);
  radedge::bind_histogram_cuda(m);
}
