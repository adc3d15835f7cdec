#include "radedge/device.h"

#include <cuda_runtime.h>

#include "radedge/cuda_util.h"

namespace radedge {

int cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why) *why = std::string("CUDA runtime: ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status);
    // Clear the sticky error so a later CUDA call in this process reports its own status.
    cudaGetLastError();
    return 0;
  }
  if (count == 0 && why) *why = "the CUDA driver reports no device";
  return count;
}

CudaDeviceProperties cuda_device_properties(int device) {
  constexpr const char* kOp = "cuda_device_properties";
  CudaDeviceProperties properties;
  if (device < 0) cuda::check(cudaGetDevice(&device), kOp, "cudaGetDevice");
  properties.device = device;
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, device), kOp, "cudaGetDeviceProperties");
  properties.name = prop.name;
  properties.compute_major = prop.major;
  properties.compute_minor = prop.minor;
  properties.total_memory_bytes = prop.totalGlobalMem;
  cuda::check(cudaDeviceGetAttribute(&properties.multiprocessors, cudaDevAttrMultiProcessorCount, device), kOp,
              "reading the multiprocessor count");
  cuda::check(cudaDeviceGetAttribute(&properties.memory_clock_khz, cudaDevAttrMemoryClockRate, device), kOp,
              "reading the memory clock");
  cuda::check(cudaDeviceGetAttribute(&properties.memory_bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, device), kOp,
              "reading the memory bus width");
  cuda::check(cudaDriverGetVersion(&properties.driver_version), kOp, "cudaDriverGetVersion");
  cuda::check(cudaRuntimeGetVersion(&properties.runtime_version), kOp, "cudaRuntimeGetVersion");
  return properties;
}

}  // namespace radedge
