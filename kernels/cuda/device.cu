#include "radedge/device.h"

#include <cuda_runtime.h>

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

}  // namespace radedge
