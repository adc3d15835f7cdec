// The CUDA emulator's runtime: memory, streams, events, graphs and the block scheduler (see
// cuda_runtime.h for what it is for and what it cannot show).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda_runtime.h"
#include "fiber.h"

dim3 threadIdx;
dim3 blockIdx;
dim3 blockDim;
dim3 gridDim;

struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  std::vector<std::function<void()>> captured;
};
struct CUevent_st {
  bool timing = true;
  bool recorded = false;
  double time_ms = 0.0;
};

namespace radedge_emulation {
namespace {

constexpr int kDeviceCount = 1;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kDefaultSharedBytes = 48 * 1024;
constexpr int kSharedOptinBytes = 227 * 1024;
constexpr size_t kFiberStackBytes = 128 * 1024;
constexpr unsigned char kPoison = 0xff;

// Everything below is guarded by this lock: launches, memory bookkeeping, streams.
std::recursive_mutex& lock() {
  static std::recursive_mutex mutex;
  return mutex;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

cudaError_t fail(cudaError_t error) {
  last_error = error;
  return error;
}

struct Allocation {
  size_t bytes;
  cudaMemoryType type;
};
// Base address -> allocation.
std::map<uintptr_t, Allocation>& allocations() {
  static std::map<uintptr_t, Allocation> map;
  return map;
}

// 256-byte aligned, as cudaMalloc is, and exactly `bytes` long, so that an AddressSanitizer
// build of the emulator catches a kernel reading or writing one byte past an allocation.
void* allocate(size_t bytes, cudaMemoryType type) {
  void* data = nullptr;
  if (posix_memalign(&data, 256, bytes == 0 ? 1 : bytes) != 0) return nullptr;
  std::memset(data, kPoison, bytes == 0 ? 1 : bytes);
  allocations()[reinterpret_cast<uintptr_t>(data)] = Allocation{bytes, type};
  return data;
}

cudaError_t release(void* data, cudaMemoryType type) {
  if (data == nullptr) return cudaSuccess;
  auto found = allocations().find(reinterpret_cast<uintptr_t>(data));
  if (found == allocations().end() || found->second.type != type) return fail(cudaErrorInvalidValue);
  allocations().erase(found);
  std::free(data);
  return cudaSuccess;
}

const Allocation* find_allocation(const void* pointer, uintptr_t* base) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  auto& map = allocations();
  auto after = map.upper_bound(address);
  if (after == map.begin()) return nullptr;
  --after;
  if (address >= after->first + (after->second.bytes == 0 ? 1 : after->second.bytes)) return nullptr;
  if (base) *base = after->first;
  return &after->second;
}

CUstream_st& legacy_stream() {
  static CUstream_st stream;
  return stream;
}

// A handle that is not one of the default streams must be one cudaStreamCreate* returned.
std::map<CUstream_st*, std::unique_ptr<CUstream_st>>& streams() {
  static std::map<CUstream_st*, std::unique_ptr<CUstream_st>> map;
  return map;
}

CUstream_st* resolve(cudaStream_t stream) {
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return &legacy_stream();
  return streams().count(stream) ? stream : nullptr;
}

// Captures in progress that forbid unsafe calls from the calling thread.
bool unsafe_call_forbidden() {
  for (auto& entry : streams()) {
    const CUstream_st& s = *entry.second;
    if (!s.capturing) continue;
    if (s.mode == cudaStreamCaptureModeGlobal) return true;
    if (s.mode == cudaStreamCaptureModeThreadLocal && s.capture_thread == std::this_thread::get_id()) return true;
  }
  return false;
}

// An unsafe call (cudaMalloc, a synchronous copy, ...) during a capture that forbids it
// invalidates that capture and fails, as CUDA does.
bool refuse_unsafe_call() {
  if (!unsafe_call_forbidden()) return false;
  for (auto& entry : streams()) {
    CUstream_st& s = *entry.second;
    if (s.capturing && (s.mode == cudaStreamCaptureModeGlobal ||
                        (s.mode == cudaStreamCaptureModeThreadLocal && s.capture_thread == std::this_thread::get_id()))) {
      s.invalidated = true;
    }
  }
  fail(cudaErrorStreamCaptureUnsupported);
  return true;
}

// Runs `work` now, or records it on a capturing stream.
cudaError_t submit(cudaStream_t handle, std::function<void()> work) {
  CUstream_st* stream = resolve(handle);
  if (stream == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (stream == &legacy_stream() && unsafe_call_forbidden()) {
    // Work on the legacy stream would synchronise with the capturing stream.
    refuse_unsafe_call();
    return cudaErrorStreamCaptureUnsupported;
  }
  if (stream->capturing) {
    stream->captured.push_back(std::move(work));
    return cudaSuccess;
  }
  work();
  return cudaSuccess;
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// ---- the block scheduler ---------------------------------------------------------------------------

enum class ThreadState { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct BlockRun {
  std::vector<std::unique_ptr<Fiber>> fibers;  // grows to the largest block seen
  std::vector<ThreadState> states;
  std::vector<dim3> indices;
  std::vector<uint64_t> exchange[2];  // warp shuffle slots, double-buffered
  std::vector<int> exchange_parity;
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
  int current = -1;
  uint64_t epoch = 0;
  std::vector<unsigned char> dynamic_shared;
  bool reverse_order = false;
};

BlockRun& block_run() {
  static BlockRun run;
  return run;
}

void thread_entry(void* argument) {
  BlockRun& run = *static_cast<BlockRun*>(argument);
  const int me = run.current;
  try {
    (*run.body)();
  } catch (...) {
    if (!run.error) run.error = std::current_exception();
  }
  run.states[static_cast<size_t>(me)] = ThreadState::kDone;
  run.fibers[static_cast<size_t>(me)]->exit();  // a finished thread is never resumed
}

void wait_here(ThreadState state) {
  BlockRun& run = block_run();
  if (run.current < 0) throw std::logic_error("CUDA emulation: a barrier outside a kernel");
  const auto me = static_cast<size_t>(run.current);
  run.states[me] = state;
  run.fibers[me]->suspend();
  // Resumed: the scheduler released the barrier and restored this thread's built-ins.
}

void resume_thread(BlockRun& run, int t) {
  run.current = t;
  threadIdx = run.indices[static_cast<size_t>(t)];
  run.states[static_cast<size_t>(t)] = ThreadState::kReady;
  run.fibers[static_cast<size_t>(t)]->resume();
  run.current = -1;
}

// Runs one block: every thread until it finishes, releasing barriers when all live threads of
// the block (or warp) have reached them.
void run_block(BlockRun& run, int threads, const char* name) {
  // Stacks are kept for the next block: a launch of 35 000 blocks reuses the same 256.
  while (run.fibers.size() < static_cast<size_t>(threads)) run.fibers.push_back(std::make_unique<Fiber>(kFiberStackBytes));
  run.states.assign(static_cast<size_t>(threads), ThreadState::kReady);
  run.indices.resize(static_cast<size_t>(threads));
  run.exchange[0].assign(static_cast<size_t>(threads), 0);
  run.exchange[1].assign(static_cast<size_t>(threads), 0);
  run.exchange_parity.assign(static_cast<size_t>(threads), 0);
  for (int t = 0; t < threads; ++t) {
    const auto ut = static_cast<unsigned int>(t);
    run.indices[static_cast<size_t>(t)] = dim3(ut % blockDim.x, (ut / blockDim.x) % blockDim.y, ut / (blockDim.x * blockDim.y));
    run.fibers[static_cast<size_t>(t)]->reset(&thread_entry, &run);
  }
  std::vector<bool> runnable(static_cast<size_t>(threads), true);
  for (;;) {
    for (int i = 0; i < threads; ++i) {
      const int t = run.reverse_order ? threads - 1 - i : i;
      if (runnable[static_cast<size_t>(t)]) resume_thread(run, t);
    }
    std::fill(runnable.begin(), runnable.end(), false);
    bool any_live = false, all_at_block_barrier = true, released = false;
    for (int warp = 0; warp * warpSize < threads; ++warp) {
      const int first = warp * warpSize, last = std::min(threads, first + warpSize);
      bool any_at_warp = false, all_at_warp = true;
      for (int t = first; t < last; ++t) {
        const ThreadState s = run.states[static_cast<size_t>(t)];
        if (s == ThreadState::kDone) continue;
        any_live = true;
        if (s != ThreadState::kAtBlockBarrier) all_at_block_barrier = false;
        if (s == ThreadState::kAtWarpBarrier) any_at_warp = true;
        else all_at_warp = false;
      }
      if (any_at_warp && all_at_warp) {
        for (int t = first; t < last; ++t) {
          if (run.states[static_cast<size_t>(t)] == ThreadState::kAtWarpBarrier) runnable[static_cast<size_t>(t)] = true;
        }
        released = true;
      }
    }
    if (!any_live) break;
    if (released) continue;
    if (all_at_block_barrier) {
      ++run.epoch;
      for (int t = 0; t < threads; ++t) {
        if (run.states[static_cast<size_t>(t)] == ThreadState::kAtBlockBarrier) runnable[static_cast<size_t>(t)] = true;
      }
      continue;
    }
    // Some threads wait at a block barrier while others of the block wait at a warp shuffle
    // that cannot complete: a divergent barrier, which hangs or corrupts a real GPU.
    throw std::logic_error(std::string("CUDA emulation: kernel ") + name +
                           " reached __syncthreads() or a warp shuffle divergently (not every live thread of the block "
                           "or warp arrived)");
  }
  if (run.error) {
    std::exception_ptr error = run.error;
    run.error = nullptr;
    std::rethrow_exception(error);
  }
}

std::map<const void*, int>& max_dynamic_shared() {
  static std::map<const void*, int> map;
  return map;
}

void run_launch(const LaunchConfig& config, const std::function<void()>& body) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  BlockRun& run = block_run();
  const char* order = std::getenv("RADEDGE_EMULATION_ORDER");
  run.reverse_order = order != nullptr && std::strcmp(order, "reverse") == 0;
  run.body = &body;
  run.dynamic_shared.assign(config.shared_bytes == 0 ? 1 : config.shared_bytes, kPoison);
  gridDim = config.grid;
  blockDim = config.block;
  const int threads = static_cast<int>(config.block.x * config.block.y * config.block.z);
  try {
    for (unsigned int z = 0; z < config.grid.z; ++z) {
      for (unsigned int y = 0; y < config.grid.y; ++y) {
        for (unsigned int x = 0; x < config.grid.x; ++x) {
          blockIdx = dim3(x, y, z);
          // Shared memory is not carried from one block to the next.
          std::memset(run.dynamic_shared.data(), kPoison, run.dynamic_shared.size());
          run_block(run, threads, config.name);
        }
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "radedge CUDA emulation: %s failed: %s\n", config.name, error.what());
    last_error = cudaErrorLaunchFailure;
  }
  run.body = nullptr;
}

}  // namespace

void block_barrier() { wait_here(ThreadState::kAtBlockBarrier); }

uint64_t warp_exchange(uint64_t bits, int source_lane) {
  BlockRun& run = block_run();
  const auto me = static_cast<size_t>(run.current);
  const size_t warp_first = me / warpSize * warpSize;
  const int parity = run.exchange_parity[me];
  run.exchange[parity][me] = bits;
  wait_here(ThreadState::kAtWarpBarrier);
  run.exchange_parity[me] = parity ^ 1;
  const size_t source = warp_first + static_cast<size_t>(source_lane);
  if (source >= run.states.size()) throw std::logic_error("CUDA emulation: a shuffle from a lane past the block");
  return run.exchange[parity][source];
}

void* dynamic_shared_memory() { return block_run().dynamic_shared.data(); }

uint64_t barrier_epoch() { return block_run().epoch; }

void enqueue_launch(const LaunchConfig& config, std::function<void()> body) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  const dim3 g = config.grid, b = config.block;
  const unsigned long long threads = static_cast<unsigned long long>(b.x) * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0 || threads > kMaxThreadsPerBlock || b.z > 64 ||
      g.y > 65535 || g.z > 65535) {
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  size_t shared_limit = kDefaultSharedBytes;
  auto optin = max_dynamic_shared().find(config.kernel);
  if (optin != max_dynamic_shared().end()) shared_limit = static_cast<size_t>(optin->second);
  if (config.shared_bytes > shared_limit) {
    fail(cudaErrorInvalidValue);
    return;
  }
  auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
  LaunchConfig copy = config;
  const cudaError_t status = submit(config.stream, [copy, shared_body] { run_launch(copy, *shared_body); });
  if (status != cudaSuccess) fail(status);
}

cudaError_t enqueue_host_work(cudaStream_t stream, const char* /*name*/, std::function<void()> work) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  return submit(stream, std::move(work));
}

}  // namespace radedge_emulation

using namespace radedge_emulation;

// ---- errors --------------------------------------------------------------------------------------------

cudaError_t cudaGetLastError() {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure (CPU emulation: see stderr)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

// ---- devices ---------------------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  *count = kDeviceCount;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= kDeviceCount) return fail(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return fail(cudaErrorInvalidValue);
  if (device < 0 || device >= kDeviceCount) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "radedge CUDA emulator on the CPU (testing only)");
  prop->totalGlobalMem = size_t{8} << 30;
  prop->major = 0;
  prop->minor = 0;
  prop->multiProcessorCount = 2;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue);
  if (device < 0 || device >= kDeviceCount) return fail(cudaErrorInvalidDevice);
  switch (attribute) {
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kDefaultSharedBytes); return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 2; return cudaSuccess;
    case cudaDevAttrMemoryClockRate: *value = 0; return cudaSuccess;
    case cudaDevAttrGlobalMemoryBusWidth: *value = 0; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = kSharedOptinBytes; return cudaSuccess;
    case cudaDevAttrMemoryPoolsSupported: *value = 1; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return fail(cudaErrorInvalidValue);
  *version = 0;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return fail(cudaErrorInvalidValue);
  *version = 0;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute, int value) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (function == nullptr || attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > kSharedOptinBytes) {
    return fail(cudaErrorInvalidValue);
  }
  max_dynamic_shared()[function] = value;
  return cudaSuccess;
}

// ---- memory ------------------------------------------------------------------------------------------------

namespace {
// cudaMalloc and cudaHostAlloc: synchronous, so refused during a capture that forbids it.
cudaError_t allocate_outside_capture(void** pointer, size_t bytes, cudaMemoryType type) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (pointer == nullptr) return fail(cudaErrorInvalidValue);
  if (refuse_unsafe_call()) return cudaErrorStreamCaptureUnsupported;
  *pointer = allocate(bytes, type);
  return *pointer ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
}  // namespace

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  return allocate_outside_capture(pointer, bytes, cudaMemoryTypeDevice);
}

cudaError_t cudaFree(void* pointer) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (refuse_unsafe_call()) return cudaErrorStreamCaptureUnsupported;
  return release(pointer, cudaMemoryTypeDevice);
}

cudaError_t cudaMallocAsync(void** pointer, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (pointer == nullptr) return fail(cudaErrorInvalidValue);
  if (resolve(stream) == nullptr) return fail(cudaErrorInvalidResourceHandle);
  // Allocated at once, also during a capture (a graph's allocation would keep its address).
  *pointer = allocate(bytes, cudaMemoryTypeDevice);
  return *pointer ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capturing) return cudaSuccess;  // the graph keeps its allocation
  return release(pointer, cudaMemoryTypeDevice);
}

cudaError_t cudaHostAlloc(void** pointer, size_t bytes, unsigned int /*flags*/) {
  return allocate_outside_capture(pointer, bytes, cudaMemoryTypeHost);
}

cudaError_t cudaFreeHost(void* pointer) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (refuse_unsafe_call()) return cudaErrorStreamCaptureUnsupported;
  return release(pointer, cudaMemoryTypeHost);
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (attributes == nullptr) return fail(cudaErrorInvalidValue);
  *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -1, nullptr, nullptr};
  uintptr_t base = 0;
  const Allocation* allocation = find_allocation(pointer, &base);
  if (allocation == nullptr) return cudaSuccess;
  attributes->type = allocation->type;
  attributes->device = 0;
  attributes->devicePointer = const_cast<void*>(pointer);
  attributes->hostPointer = allocation->type == cudaMemoryTypeHost ? const_cast<void*>(pointer) : nullptr;
  return cudaSuccess;
}

namespace {
// A copy touching device memory must stay inside the allocation it starts in.
bool copy_in_bounds(const void* pointer, size_t bytes) {
  uintptr_t base = 0;
  const Allocation* allocation = find_allocation(pointer, &base);
  if (allocation == nullptr) return true;  // host memory: not the emulator's to check
  return reinterpret_cast<uintptr_t>(pointer) + bytes <= base + allocation->bytes;
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (bytes == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr || kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault ||
      !copy_in_bounds(destination, bytes) || !copy_in_bounds(source, bytes)) {
    return fail(cudaErrorInvalidValue);
  }
  const cudaError_t status = submit(stream, [=] { std::memmove(destination, source, bytes); });
  return status == cudaSuccess ? status : fail(status);
}

cudaError_t cudaMemcpy2DAsync(void* destination, size_t destination_pitch, const void* source, size_t source_pitch,
                              size_t width_bytes, size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (width_bytes == 0 || height == 0) return cudaSuccess;
  const size_t destination_span = destination_pitch * (height - 1) + width_bytes;
  const size_t source_span = source_pitch * (height - 1) + width_bytes;
  if (destination == nullptr || source == nullptr || width_bytes > destination_pitch || width_bytes > source_pitch ||
      kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault || !copy_in_bounds(destination, destination_span) ||
      !copy_in_bounds(source, source_span)) {
    return fail(cudaErrorInvalidValue);
  }
  const cudaError_t status = submit(stream, [=] {
    for (size_t row = 0; row < height; ++row) {
      std::memmove(static_cast<char*>(destination) + row * destination_pitch,
                   static_cast<const char*>(source) + row * source_pitch, width_bytes);
    }
  });
  return status == cudaSuccess ? status : fail(status);
}

cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (refuse_unsafe_call()) return cudaErrorStreamCaptureUnsupported;
  return cudaMemcpyAsync(destination, source, bytes, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* destination, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (bytes == 0) return cudaSuccess;
  if (destination == nullptr || !copy_in_bounds(destination, bytes)) return fail(cudaErrorInvalidValue);
  const cudaError_t status = submit(stream, [=] { std::memset(destination, value, bytes); });
  return status == cudaSuccess ? status : fail(status);
}

// ---- streams ---------------------------------------------------------------------------------------------

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int /*flags*/, int /*priority*/) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (stream == nullptr) return fail(cudaErrorInvalidValue);
  auto owned = std::make_unique<CUstream_st>();
  *stream = owned.get();
  streams()[owned.get()] = std::move(owned);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  auto found = streams().find(stream);
  if (found == streams().end()) return fail(cudaErrorInvalidResourceHandle);
  streams().erase(found);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capturing) {
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  if (s == &legacy_stream() && refuse_unsafe_call()) return cudaErrorStreamCaptureUnsupported;
  return cudaSuccess;  // work ran when it was enqueued
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capturing) {
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int /*flags*/) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (resolve(stream) == nullptr || event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;  // work in the emulator is complete when enqueued
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s == &legacy_stream()) return fail(cudaErrorStreamCaptureUnsupported);
  if (s->capturing) return fail(cudaErrorIllegalState);
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->capture_thread = std::this_thread::get_id();
  s->captured.clear();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr || graph == nullptr) return fail(cudaErrorInvalidValue);
  if (!s->capturing) return fail(cudaErrorIllegalState);
  if (s->mode != cudaStreamCaptureModeRelaxed && s->capture_thread != std::this_thread::get_id()) {
    return fail(cudaErrorStreamCaptureWrongThread);
  }
  s->capturing = false;
  *graph = nullptr;
  if (s->invalidated) {
    s->captured.clear();
    return fail(cudaErrorStreamCaptureInvalidated);
  }
  auto* g = new CUgraph_st;
  g->nodes = std::move(s->captured);
  s->captured.clear();
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  CUstream_st* s = resolve(stream);
  if (s == nullptr || status == nullptr) return fail(cudaErrorInvalidValue);
  *status = !s->capturing ? cudaStreamCaptureStatusNone
                          : (s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

// ---- events ----------------------------------------------------------------------------------------------

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return fail(cudaErrorInvalidValue);
  auto* e = new CUevent_st;
  e->timing = (flags & cudaEventDisableTiming) == 0;
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  const cudaError_t status = submit(stream, [event] {
    event->recorded = true;
    event->time_ms = now_ms();
  });
  return status == cudaSuccess ? status : fail(status);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (milliseconds == nullptr || start == nullptr || end == nullptr) return fail(cudaErrorInvalidValue);
  if (!start->timing || !end->timing) return fail(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *milliseconds = static_cast<float>(end->time_ms - start->time_ms);
  return cudaSuccess;
}

// ---- graphs ----------------------------------------------------------------------------------------------

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  if (exec == nullptr || graph == nullptr) return fail(cudaErrorInvalidValue);
  auto* e = new CUgraphExec_st;
  e->nodes = graph->nodes;
  *exec = e;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> guard(lock());
  if (exec == nullptr) return fail(cudaErrorInvalidResourceHandle);
  const auto nodes = exec->nodes;
  const cudaError_t status = submit(stream, [nodes] {
    for (const auto& node : nodes) node();
  });
  return status == cudaSuccess ? status : fail(status);
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (graph == nullptr) return fail(cudaErrorInvalidResourceHandle);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (exec == nullptr) return fail(cudaErrorInvalidResourceHandle);
  delete exec;
  return cudaSuccess;
}
