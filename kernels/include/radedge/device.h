// What the native module can tell about CUDA devices without requiring one.
#pragma once

#include <cstddef>
#include <string>

namespace radedge {

// Number of CUDA devices visible to this process; 0 with `why` set when the module was
// built without CUDA, no driver is installed, or the driver sees no device.
int cuda_device_count(std::string* why);

// What a benchmark or a support report names a device by. Versions are CUDA's integers
// (1000 * major + 10 * minor: 13000 is 13.0).
struct CudaDeviceProperties {
  int device = -1;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  size_t total_memory_bytes = 0;
  int memory_clock_khz = 0;      // peak; 0 where the driver does not report it
  int memory_bus_width_bits = 0;
  int driver_version = 0;        // the newest CUDA version the installed driver supports
  int runtime_version = 0;       // the CUDA runtime radedge was built with
};

// Properties of `device` (-1: the current one). Throws CudaError naming the failed call.
CudaDeviceProperties cuda_device_properties(int device);

}  // namespace radedge
