// A CPU emulation of the part of the CUDA runtime and language that kernels/cuda uses, so that
// the CUDA sources themselves -- kernels, launch configurations, workspaces, stream capture --
// run and are tested against the CPU reference on machines without a GPU (CI among them).
//
// It is a test tool, never a product: a build with -DRADEDGE_CUDA_EMULATION=ON says so in its
// build_info() and in the device name. What it proves and what it cannot:
//   - proves: the indexing and bounds of every kernel, the host-side orchestration (workspace
//     layouts, launch configurations, the order of kernels and copies on a stream), the block
//     barriers and warp shuffles being reached uniformly, results equal to the CPU reference;
//   - cannot: timing, the GPU memory model, true concurrency between threads (the threads of a
//     block run one after another, switching at barriers), device-specific arithmetic (code under
//     __CUDA_ARCH__ is not compiled; the host branch of each shared function runs instead).
//
// How it runs a launch: blocks one after another on the calling thread; the threads of a block as
// fibers that run until they reach __syncthreads() or a warp shuffle, then wait until every live
// thread of the block (or warp) has reached it. __shared__ variables are function statics (one
// block lives at a time; launches are serialised by a process-wide lock). Device memory is host
// memory from the emulator, filled with 0xFF bytes when allocated so that reading memory nobody
// wrote shows up as NaN / all-ones rather than as a convenient zero.
//
// Sources are fed through kernels/emulation/rewrite_cuda.py first, which turns each
// `kernel<<<grid, block, shared, stream>>>(args)` into `radedge_emulation::launch(...)(args)` and
// each `extern __shared__ T name[];` into a pointer to the launch's dynamic shared memory.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define RADEDGE_CUDA_EMULATION 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// One block runs at a time, so a function static is that block's shared variable.
#define __shared__ static

using std::isfinite;
using std::isinf;
using std::isnan;

// ---- built-in types and variables --------------------------------------------------------------

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
using uint3 = dim3;

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// Set by the emulator before it resumes a thread.
extern dim3 threadIdx;
extern dim3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime types -------------------------------------------------------------------------------

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaError = cudaError_t;

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

#define cudaStreamLegacy (reinterpret_cast<cudaStream_t>(0x1))
#define cudaStreamPerThread (reinterpret_cast<cudaStream_t>(0x2))

enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaMemoryType : int {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

enum cudaStreamCaptureStatus : int {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaStreamCaptureMode : int {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaDeviceAttr : int {
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMemoryClockRate = 36,
  cudaDevAttrGlobalMemoryBusWidth = 37,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMemoryPoolsSupported = 115,
};

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major;
  int minor;
  int multiProcessorCount;
};

constexpr unsigned int cudaStreamDefault = 0x0;
constexpr unsigned int cudaStreamNonBlocking = 0x1;
constexpr unsigned int cudaEventDefault = 0x0;
constexpr unsigned int cudaEventBlockingSync = 0x1;
constexpr unsigned int cudaEventDisableTiming = 0x2;
constexpr unsigned int cudaHostAllocDefault = 0x0;
constexpr unsigned int cudaHostAllocPortable = 0x1;

// ---- runtime API -----------------------------------------------------------------------------------

cudaError_t cudaGetLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);

cudaError_t cudaMalloc(void** pointer, size_t bytes);
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMallocAsync(void** pointer, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream);
cudaError_t cudaHostAlloc(void** pointer, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* pointer);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer);
cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2DAsync(void* destination, size_t destination_pitch, const void* source, size_t source_pitch,
                              size_t width_bytes, size_t height, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* destination, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute, int value);
template <typename F>
cudaError_t cudaFuncSetAttribute(F* function, cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(function), attribute, value);
}

// ---- device functions ------------------------------------------------------------------------------

namespace radedge_emulation {

// Blocks the calling thread of the block until every live thread of the block has arrived.
void block_barrier();
// Exchanges `bits` within the warp: returns the bits that lane `source_lane` put in.
uint64_t warp_exchange(uint64_t bits, int source_lane);
// The launch's dynamic shared memory (`extern __shared__`).
void* dynamic_shared_memory();
// A counter that changes each time a block barrier releases (see cub's BlockScan shim).
uint64_t barrier_epoch();
// Linear index of the calling thread in its block.
inline unsigned int linear_thread() { return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x; }
inline unsigned int block_threads() { return blockDim.x * blockDim.y * blockDim.z; }

template <typename To, typename From>
inline To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

}  // namespace radedge_emulation

inline void __syncthreads() { radedge_emulation::block_barrier(); }

template <typename T>
inline T __shfl_xor_sync(unsigned int /*mask*/, T value, int lane_mask, int width = warpSize) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value, "shuffle of a large type");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  const int lane = static_cast<int>(radedge_emulation::linear_thread() % warpSize);
  const int source = (lane & ~(width - 1)) | ((lane ^ lane_mask) & (width - 1));
  bits = radedge_emulation::warp_exchange(bits, source);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

template <typename T>
inline T __ldg(const T* pointer) {
  return *pointer;
}

// The threads of a launch never run at the same time, so atomics are plain read-modify-writes.
namespace radedge_emulation {
template <typename T, typename Update>
inline T read_modify_write(T* address, Update update) {
  const T old = *address;
  *address = update(old);
  return old;
}
}  // namespace radedge_emulation

template <typename T>
inline T atomicAdd(T* address, T value) {
  return radedge_emulation::read_modify_write(address, [value](T old) { return static_cast<T>(old + value); });
}
template <typename T>
inline T atomicMin(T* address, T value) {
  return radedge_emulation::read_modify_write(address, [value](T old) { return value < old ? value : old; });
}
template <typename T>
inline T atomicMax(T* address, T value) {
  return radedge_emulation::read_modify_write(address, [value](T old) { return value > old ? value : old; });
}

inline float __int_as_float(int bits) { return radedge_emulation::bit_cast<float>(bits); }
inline int __float_as_int(float value) { return radedge_emulation::bit_cast<int>(value); }
inline float __uint_as_float(unsigned int bits) { return radedge_emulation::bit_cast<float>(bits); }
inline unsigned int __float_as_uint(float value) { return radedge_emulation::bit_cast<unsigned int>(value); }
inline double __longlong_as_double(long long bits) { return radedge_emulation::bit_cast<double>(bits); }
inline long long __double_as_longlong(double value) { return radedge_emulation::bit_cast<long long>(value); }

// Round-to-nearest arithmetic: what IEEE single precision does on the host (the build turns
// off contraction into fused multiply-adds, as nvcc's _rn intrinsics guarantee).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }

// ---- kernel launches ---------------------------------------------------------------------------------

namespace radedge_emulation {

struct LaunchConfig {
  const char* name;
  const void* kernel;
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
};

// Runs (or, on a capturing stream, records) `body` for every thread of every block.
void enqueue_launch(const LaunchConfig& config, std::function<void()> body);

template <typename Call>
class Launch {
 public:
  Launch(const char* name, const void* kernel, Call call, dim3 grid, dim3 block, size_t shared_bytes = 0,
         cudaStream_t stream = nullptr)
      : config_{name, kernel, grid, block, shared_bytes, stream}, call_(call) {}

  // Kernel arguments are copied at launch, as CUDA copies them.
  template <typename... Args>
  void operator()(Args&&... args) const {
    std::tuple<std::decay_t<Args>...> values(std::forward<Args>(args)...);
    const Call call = call_;
    enqueue_launch(config_, [call, values]() { std::apply(call, values); });
  }

 private:
  LaunchConfig config_;
  Call call_;
};

// `kernel`: the kernel's address (for cudaFuncSetAttribute's shared memory opt-in), or null.
template <typename Call, typename... Config>
Launch<Call> launch(const char* name, const void* kernel, Call call, Config&&... config) {
  return Launch<Call>(name, kernel, call, std::forward<Config>(config)...);
}

// Runs `work` in stream order (or records it on a capturing stream): for library calls such as
// cub's device-wide algorithms.
cudaError_t enqueue_host_work(cudaStream_t stream, const char* name, std::function<void()> work);

}  // namespace radedge_emulation
