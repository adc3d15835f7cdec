// Shared CUDA plumbing for the ops in kernels/cuda: error checks and RAII owners (the stream,
// event, graph and array owners live in radedge/cuda_memory.h, which needs no CUDA header).
// Only for translation units compiled with the CUDA toolkit's headers available.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "radedge/cuda_memory.h"  // Stream, Event, DeviceArray, ... (CUDA-free declarations)
#include "radedge/errors.h"

namespace radedge::cuda {

// Throws CudaError "<op> (CUDA): <step> failed: <name>: <description>".
[[noreturn]] inline void throw_error(const char* op, const char* step, cudaError_t status) {
  throw CudaError(std::string(op) + " (CUDA): " + step + " failed: " + cudaGetErrorName(status) + ": " +
                  cudaGetErrorString(status));
}

inline void check(cudaError_t status, const char* op, const char* step) {
  if (status != cudaSuccess) {
    // Clear a non-sticky error so the next call in this process reports its own status.
    cudaGetLastError();
    throw_error(op, step, status);
  }
}

// Throws CudaError naming `op` when no CUDA device can be used by this process.
inline void require_device(const char* op) {
  int devices = 0;
  check(cudaGetDeviceCount(&devices), op, "cudaGetDeviceCount");
  if (devices == 0) throw CudaError(std::string(op) + " (CUDA): the CUDA driver reports no device");
}

// Device memory owned for a scope.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, const char* op) {
    if (bytes > 0) check(cudaMalloc(&data_, bytes), op, "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_) { other.data_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      if (data_) cudaFree(data_);
      data_ = other.data_;
      other.data_ = nullptr;
    }
    return *this;
  }
  void* get() const { return data_; }

 private:
  void* data_ = nullptr;
};

}  // namespace radedge::cuda
