// The CUDA runtime calls behind radedge/cuda_memory.h: one function per call, each turning a
// failure into a CudaError that names the caller, the call and the CUDA error.
#include <cuda_runtime.h>

#include "radedge/cuda_memory.h"
#include "radedge/cuda_util.h"

namespace radedge::cuda::runtime {
namespace {

// Makes `device` current while a resource of that device is released, ignoring errors: the
// release runs in destructors, which have no one to report to, possibly while the CUDA runtime is
// already unloading at process exit.
class QuietDeviceGuard {
 public:
  explicit QuietDeviceGuard(int device) : device_(device) {
    if (device_ >= 0 && cudaGetDevice(&previous_) == cudaSuccess && previous_ != device_) cudaSetDevice(device_);
  }
  ~QuietDeviceGuard() {
    if (previous_ >= 0 && previous_ != device_) cudaSetDevice(previous_);
    cudaGetLastError();
  }
  QuietDeviceGuard(const QuietDeviceGuard&) = delete;
  QuietDeviceGuard& operator=(const QuietDeviceGuard&) = delete;

 private:
  int device_;
  int previous_ = -1;
};

}  // namespace

int current_device(const char* op) {
  int device = 0;
  check(cudaGetDevice(&device), op, "cudaGetDevice");
  return device;
}

void set_device(int device, const char* op) { check(cudaSetDevice(device), op, "cudaSetDevice"); }

void restore_device(int device) noexcept {
  if (cudaSetDevice(device) != cudaSuccess) cudaGetLastError();
}

void* allocate_device(size_t bytes, const char* op) {
  void* data = nullptr;
  check(cudaMalloc(&data, bytes), op, "cudaMalloc");
  return data;
}

void free_device(void* data, int device) noexcept {
  QuietDeviceGuard guard(device);
  // cudaFree waits for the device to finish the work that may still use the memory.
  cudaFree(data);
}

void* allocate_pinned(size_t bytes, const char* op) {
  void* data = nullptr;
  check(cudaHostAlloc(&data, bytes, cudaHostAllocPortable), op, "cudaHostAlloc");
  return data;
}

void free_pinned(void* data) noexcept {
  cudaFreeHost(data);
  cudaGetLastError();
}

void* allocate_async(size_t bytes, StreamHandle stream, bool* pooled, const char* op) {
  int device = 0;
  check(cudaGetDevice(&device), op, "cudaGetDevice");
  int pools = 0;
  check(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device), op, "cudaDeviceGetAttribute");
  void* data = nullptr;
  if (pools) {
    check(cudaMallocAsync(&data, bytes, stream), op, "cudaMallocAsync");
    *pooled = true;
  } else {
    check(cudaMalloc(&data, bytes), op, "cudaMalloc");
    *pooled = false;
  }
  return data;
}

void free_async(void* data, StreamHandle stream, bool pooled, int device) noexcept {
  if (pooled) {
    cudaFreeAsync(data, stream);
    cudaGetLastError();
  } else {
    free_device(data, device);
  }
}

void copy_async(void* destination, const void* source, size_t bytes, StreamHandle stream, const char* op) {
  check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, stream), op, "cudaMemcpyAsync");
}

StreamHandle create_stream(int priority, const char* op) {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, priority), op, "cudaStreamCreateWithPriority");
  return stream;
}

void destroy_stream(StreamHandle stream, int device) noexcept {
  // Work still queued on the stream runs to completion; CUDA frees the stream afterwards.
  QuietDeviceGuard guard(device);
  cudaStreamDestroy(stream);
}

void synchronize_stream(StreamHandle stream, const char* op) {
  check(cudaStreamSynchronize(stream), op, "cudaStreamSynchronize");
}

bool stream_done(StreamHandle stream, const char* op) {
  const cudaError_t status = cudaStreamQuery(stream);
  if (status == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  check(status, op, "cudaStreamQuery");
  return true;
}

bool stream_capturing(StreamHandle stream, const char* op) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &status), op, "cudaStreamIsCapturing");
  return status != cudaStreamCaptureStatusNone;
}

EventHandle create_event(bool timing, const char* op) {
  cudaEvent_t event = nullptr;
  check(cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming), op,
        "cudaEventCreateWithFlags");
  return event;
}

void destroy_event(EventHandle event, int device) noexcept {
  QuietDeviceGuard guard(device);
  cudaEventDestroy(event);
}

void record_event(EventHandle event, StreamHandle stream, const char* op) {
  check(cudaEventRecord(event, stream), op, "cudaEventRecord");
}

void synchronize_event(EventHandle event, const char* op) {
  check(cudaEventSynchronize(event), op, "cudaEventSynchronize");
}

bool event_done(EventHandle event, const char* op) {
  const cudaError_t status = cudaEventQuery(event);
  if (status == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  check(status, op, "cudaEventQuery");
  return true;
}

float elapsed_ms(EventHandle start, EventHandle end, const char* op) {
  float milliseconds = 0.0f;
  check(cudaEventElapsedTime(&milliseconds, start, end), op, "cudaEventElapsedTime");
  return milliseconds;
}

void wait_event(StreamHandle stream, EventHandle event, const char* op) {
  check(cudaStreamWaitEvent(stream, event, 0), op, "cudaStreamWaitEvent");
}

void begin_capture(StreamHandle stream, CaptureMode mode, const char* op) {
  const cudaStreamCaptureMode cuda_mode = mode == CaptureMode::kGlobal        ? cudaStreamCaptureModeGlobal
                                          : mode == CaptureMode::kThreadLocal ? cudaStreamCaptureModeThreadLocal
                                                                              : cudaStreamCaptureModeRelaxed;
  check(cudaStreamBeginCapture(stream, cuda_mode), op, "cudaStreamBeginCapture");
}

GraphExecHandle end_capture(StreamHandle stream, const char* op) {
  cudaGraph_t graph = nullptr;
  // An error inside the capture invalidates it; cudaStreamEndCapture then reports that error and
  // still ends the capture, so the stream can be used again.
  check(cudaStreamEndCapture(stream, &graph), op, "cudaStreamEndCapture (an operation inside the capture was refused)");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(status, op, "cudaGraphInstantiate");
  return exec;
}

void abandon_capture(StreamHandle stream) noexcept {
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  cudaGetLastError();
}

void launch_graph(GraphExecHandle graph, StreamHandle stream, const char* op) {
  check(cudaGraphLaunch(graph, stream), op, "cudaGraphLaunch");
}

void destroy_graph(GraphExecHandle graph, int device) noexcept {
  QuietDeviceGuard guard(device);
  cudaGraphExecDestroy(graph);
}

PointerInfo pointer_info(const void* address, const char* op) {
  cudaPointerAttributes attributes{};
  check(cudaPointerGetAttributes(&attributes, address), op, "cudaPointerGetAttributes");
  PointerInfo info;
  info.device = attributes.device;
  switch (attributes.type) {
    case cudaMemoryTypeDevice:
      info.kind = PointerInfo::Kind::kDevice;
      break;
    case cudaMemoryTypeManaged:
      info.kind = PointerInfo::Kind::kManaged;
      break;
    case cudaMemoryTypeHost:
      info.kind = PointerInfo::Kind::kHost;
      break;
    default:
      info.kind = PointerInfo::Kind::kUnregistered;
      break;
  }
  return info;
}

}  // namespace radedge::cuda::runtime
