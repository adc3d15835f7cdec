// Device memory, page-locked host memory, streams, events and CUDA graphs, each owned by an RAII
// object, so that a GPU pipeline keeps pixels on the device from upload to decoded result.
//
// This header includes no CUDA header: bindings and CPU code can use the types in a build without
// CUDA. The calls into the CUDA runtime are the functions of `runtime` below, defined in
// kernels/cuda/memory.cu; a build without CUDA defines them to throw CudaError instead
// (kernels/python/cuda_binding.cpp), so every entry point fails with a clear message there.
//
// Conventions:
//   - `op` names the caller in error messages: CudaError "<op> (CUDA): <step> failed: <error>".
//   - A device of -1 means "the device current on the calling thread when the object is used".
//   - Shapes and strides are int64; strides count bytes (as __cuda_array_interface__ does).
//   - Work is enqueued on a stream and never waited for unless a function says it waits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "radedge/dlpack_abi.h"

// The CUDA handle types are pointers to these structs (cudaStream_t is CUstream_st*, ...);
// naming the structs keeps this header free of CUDA includes.
struct CUstream_st;
struct CUevent_st;
struct CUgraphExec_st;

namespace radedge::cuda {

using StreamHandle = CUstream_st*;
using EventHandle = CUevent_st*;
using GraphExecHandle = CUgraphExec_st*;

// The values CUDA gives its two default streams (cudaStreamLegacy, cudaStreamPerThread), which
// are also the values __cuda_array_interface__ v3 and DLPack use for them. A null handle is the
// legacy default stream too: radedge is not built with per-thread default streams.
inline StreamHandle legacy_stream() { return reinterpret_cast<StreamHandle>(uintptr_t{1}); }
inline StreamHandle per_thread_stream() { return reinterpret_cast<StreamHandle>(uintptr_t{2}); }
inline bool is_legacy_stream(StreamHandle handle) { return handle == nullptr || handle == legacy_stream(); }
inline bool same_stream(StreamHandle a, StreamHandle b) {
  return a == b || (is_legacy_stream(a) && is_legacy_stream(b));
}
// The integer that names `handle` in __cuda_array_interface__ v3 and DLPack (never 0).
inline int64_t stream_protocol_value(StreamHandle handle) {
  return is_legacy_stream(handle) ? 1 : static_cast<int64_t>(reinterpret_cast<uintptr_t>(handle));
}

enum class CaptureMode : int { kGlobal, kThreadLocal, kRelaxed };

// What cudaPointerGetAttributes says about an address.
struct PointerInfo {
  enum class Kind : int { kUnregistered, kHost, kDevice, kManaged };
  Kind kind = Kind::kUnregistered;
  int device = -1;
};

// CUDA ops take a caller-owned workspace (so they allocate nothing and can sit in a CUDA graph)
// and carve it into pieces aligned as cudaMalloc aligns.
constexpr size_t kWorkspaceAlignment = 256;
inline size_t align_workspace(size_t bytes) {
  return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}
// Throws std::invalid_argument naming `op` unless `workspace` is non-null, aligned and holds
// `needed` bytes; the message points at <op>_cuda_workspace_bytes, which sizes it.
inline void check_workspace(const char* op, const void* workspace, size_t workspace_bytes, size_t needed) {
  if (workspace != nullptr && workspace_bytes >= needed &&
      reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment == 0) {
    return;
  }
  throw std::invalid_argument(std::string(op) + " (CUDA): the workspace must be " + std::to_string(needed) +
                              " bytes or more, " + std::to_string(kWorkspaceAlignment) + "-byte aligned; got " +
                              std::to_string(workspace_bytes) + " bytes" +
                              (workspace == nullptr ? " at a null pointer" : "") + " (size it with " + op +
                              "_cuda_workspace_bytes; cudaMalloc aligns)");
}

// One function per CUDA runtime call radedge makes. Throwing ones throw CudaError naming `op` and
// the failed call; the noexcept ones release resources and ignore errors (a destructor has no one
// to report to, and the CUDA runtime may already be unloading at process exit).
namespace runtime {
int current_device(const char* op);
void set_device(int device, const char* op);
void restore_device(int device) noexcept;
void* allocate_device(size_t bytes, const char* op);  // on the current device
void free_device(void* data, int device) noexcept;
void* allocate_pinned(size_t bytes, const char* op);  // portable: usable from every device
void free_pinned(void* data) noexcept;
// Stream-ordered memory on the current device (cudaMallocAsync) when its memory pools are
// supported, else cudaMalloc; `pooled` says which, for free_async.
void* allocate_async(size_t bytes, StreamHandle stream, bool* pooled, const char* op);
void free_async(void* data, StreamHandle stream, bool pooled, int device) noexcept;
// cudaMemcpyAsync with cudaMemcpyDefault: the direction follows from the addresses (unified addressing).
void copy_async(void* destination, const void* source, size_t bytes, StreamHandle stream, const char* op);
StreamHandle create_stream(int priority, const char* op);  // non-blocking, on the current device
void destroy_stream(StreamHandle stream, int device) noexcept;
void synchronize_stream(StreamHandle stream, const char* op);
bool stream_done(StreamHandle stream, const char* op);
bool stream_capturing(StreamHandle stream, const char* op);
EventHandle create_event(bool timing, const char* op);  // on the current device
void destroy_event(EventHandle event, int device) noexcept;
void record_event(EventHandle event, StreamHandle stream, const char* op);
void synchronize_event(EventHandle event, const char* op);
bool event_done(EventHandle event, const char* op);
float elapsed_ms(EventHandle start, EventHandle end, const char* op);
void wait_event(StreamHandle stream, EventHandle event, const char* op);
void begin_capture(StreamHandle stream, CaptureMode mode, const char* op);
// Ends the capture and instantiates the captured graph; the stream stops capturing even when
// this throws.
GraphExecHandle end_capture(StreamHandle stream, const char* op);
void abandon_capture(StreamHandle stream) noexcept;
void launch_graph(GraphExecHandle graph, StreamHandle stream, const char* op);
void destroy_graph(GraphExecHandle graph, int device) noexcept;
PointerInfo pointer_info(const void* address, const char* op);
}  // namespace runtime

// ---------------------------------------------------------------------------------------------
// Element types: DLPack's description (code, bits, lanes == 1). The types radedge arrays hold are
// those numpy has: bool, int8..int64, uint8..uint64, float16, float32, float64.

using DType = DLDataType;

inline bool same_dtype(DType a, DType b) { return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes; }
inline size_t itemsize(DType dtype) { return static_cast<size_t>(dtype.bits / 8) * dtype.lanes; }

inline bool is_supported(DType dtype) {
  if (dtype.lanes != 1) return false;
  switch (dtype.code) {
    case dlpack::kDLBool:
      return dtype.bits == 8;
    case dlpack::kDLInt:
    case dlpack::kDLUInt:
      return dtype.bits == 8 || dtype.bits == 16 || dtype.bits == 32 || dtype.bits == 64;
    case dlpack::kDLFloat:
      return dtype.bits == 16 || dtype.bits == 32 || dtype.bits == 64;
    default:
      return false;
  }
}

// "float32", "uint16", "bool"; other DLPack types get a descriptive name.
inline std::string dtype_name(DType dtype) {
  std::string base;
  switch (dtype.code) {
    case dlpack::kDLBool:
      if (dtype.bits == 8 && dtype.lanes == 1) return "bool";
      base = "bool";
      break;
    case dlpack::kDLInt:
      base = "int";
      break;
    case dlpack::kDLUInt:
      base = "uint";
      break;
    case dlpack::kDLFloat:
      base = "float";
      break;
    case dlpack::kDLBfloat:
      base = "bfloat";
      break;
    case dlpack::kDLComplex:
      base = "complex";
      break;
    default:
      return "DLPack type code " + std::to_string(dtype.code) + " of " + std::to_string(dtype.bits) + " bits";
  }
  std::string name = base + std::to_string(dtype.bits);
  if (dtype.lanes != 1) name += " x " + std::to_string(dtype.lanes) + " lanes";
  return name;
}

// numpy array-interface type string: "<f4", "|u1", "|b1" (radedge targets little-endian hosts).
inline std::string typestr(DType dtype) {
  const char kind = dtype.code == dlpack::kDLBool ? 'b' : dtype.code == dlpack::kDLInt ? 'i'
                                                        : dtype.code == dlpack::kDLUInt ? 'u'
                                                                                        : 'f';
  const size_t size = itemsize(dtype);
  return std::string(1, size == 1 ? '|' : '<') + kind + std::to_string(size);
}

// Parses a numpy array-interface type string ("<f4", "|u1", "=i2"); throws std::invalid_argument
// for types radedge does not hold and for big-endian data.
inline DType dtype_from_typestr(const std::string& text) {
  const auto refuse = [&text](const std::string& why) -> DType {
    throw std::invalid_argument("element type '" + text + "' " + why +
                                "; radedge arrays hold bool, int8-64, uint8-64, float16, float32 or float64");
  };
  if (text.size() < 3 || (text[0] != '<' && text[0] != '>' && text[0] != '|' && text[0] != '=')) {
    return refuse("is not a numpy type string (byte order, kind, size: e.g. '<f4')");
  }
  size_t size = 0;
  for (size_t i = 2; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || size > 1000) return refuse("is not a numpy type string");
    size = size * 10 + static_cast<size_t>(text[i] - '0');
  }
  if (text[0] == '>' && size > 1) return refuse("is big-endian");
  DType dtype{0, static_cast<uint8_t>(size * 8), 1};
  switch (text[1]) {
    case 'b':
      dtype.code = dlpack::kDLBool;
      break;
    case 'i':
      dtype.code = dlpack::kDLInt;
      break;
    case 'u':
      dtype.code = dlpack::kDLUInt;
      break;
    case 'f':
      dtype.code = dlpack::kDLFloat;
      break;
    default:
      return refuse("is not supported");
  }
  if (size > 8 || !is_supported(dtype)) return refuse("is not supported");
  return dtype;
}

// ---------------------------------------------------------------------------------------------
// Array layout.

// Number of elements; throws std::invalid_argument on a negative extent or an element count
// whose bytes would not fit in int64.
inline int64_t element_count(const std::vector<int64_t>& shape, size_t item_bytes) {
  int64_t count = 1;
  const int64_t limit = INT64_MAX / static_cast<int64_t>(item_bytes > 0 ? item_bytes : 1);
  for (const int64_t extent : shape) {
    if (extent < 0) throw std::invalid_argument("a shape cannot have a negative extent");
    if (extent != 0 && count > limit / extent) throw std::invalid_argument("the array is too large to address");
    count *= extent;
  }
  return count;
}

// Byte strides of a C-contiguous array of `shape`.
inline std::vector<int64_t> c_strides(const std::vector<int64_t>& shape, size_t item_bytes) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = static_cast<int64_t>(item_bytes);
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

// Whether elements are laid out in C order without gaps. The stride of an axis of extent 1 is
// never used (numpy and torch leave it arbitrary), and an empty array has no layout.
inline bool is_c_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                            size_t item_bytes) {
  int64_t expected = static_cast<int64_t>(item_bytes);
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

// "(3, 4)", "(5,)", "()".
inline std::string describe_shape(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

// ---------------------------------------------------------------------------------------------

// Makes `device` current for a scope (-1: leaves the current device) and restores the previous one.
class DeviceGuard {
 public:
  DeviceGuard(int device, const char* op) {
    if (device < 0) return;
    previous_ = runtime::current_device(op);
    if (previous_ != device) runtime::set_device(device, op);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) runtime::restore_device(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

class Event;

// A CUDA stream: one radedge created (owned: destroyed with this object) or one someone else
// created and destroys (borrowed: torch.cuda.Stream, a CuPy stream, a default stream).
class Stream {
 public:
  // A new non-blocking stream on `device` (-1: the current one); lower priority numbers run first.
  static Stream create(int device, int priority, const char* op) {
    DeviceGuard guard(device, op);
    const int on = device >= 0 ? device : runtime::current_device(op);
    return Stream(runtime::create_stream(priority, op), on, true);
  }
  // `handle` as its creator gives it; the caller keeps its creator alive while this is used.
  static Stream borrow(StreamHandle handle, int device) { return Stream(handle, device, false); }
  // The legacy default stream of the device current when it is used.
  static Stream legacy_default() { return Stream(nullptr, -1, false); }

  // A new non-blocking stream on the current device, owned for a scope (the form the CUDA ops'
  // host-array helpers use).
  explicit Stream(const char* op) : Stream(create(-1, 0, op)) {}

  Stream(Stream&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)),
        device_(other.device_),
        owned_(std::exchange(other.owned_, false)) {}
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = std::exchange(other.handle_, nullptr);
      device_ = other.device_;
      owned_ = std::exchange(other.owned_, false);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { release(); }

  StreamHandle handle() const { return handle_; }
  StreamHandle get() const { return handle_; }
  int device() const { return device_; }
  bool owned() const { return owned_; }
  bool is_legacy_default() const { return is_legacy_stream(handle_); }

  // Waits on the host until all work enqueued so far has run.
  void synchronize(const char* op) const {
    DeviceGuard guard(device_, op);
    runtime::synchronize_stream(handle_, op);
  }
  // True when all work enqueued so far has run.
  bool done(const char* op) const {
    DeviceGuard guard(device_, op);
    return runtime::stream_done(handle_, op);
  }
  // True while a CUDA graph capture is recording this stream's work.
  bool capturing(const char* op) const {
    if (is_legacy_default()) return false;  // the legacy stream cannot be captured
    DeviceGuard guard(device_, op);
    return runtime::stream_capturing(handle_, op);
  }
  // Work enqueued on this stream from now on runs after `event` (as last recorded) has completed.
  inline void wait(const Event& event, const char* op) const;
  // Work enqueued on this stream from now on runs after the work enqueued so far on `producer`.
  inline void wait(const Stream& producer, const char* op) const;

 private:
  Stream(StreamHandle handle, int device, bool owned) : handle_(handle), device_(device), owned_(owned) {}
  void release() noexcept {
    if (owned_) runtime::destroy_stream(handle_, device_);
    owned_ = false;
  }

  StreamHandle handle_ = nullptr;
  int device_ = -1;
  bool owned_ = false;
};

// A CUDA event on one device: recorded on a stream, waited for by the host or by other streams,
// and (when created with timing) the source of elapsed times between two of them.
class Event {
 public:
  Event(int device, bool timing, const char* op) : timing_(timing) {
    DeviceGuard guard(device, op);
    device_ = device >= 0 ? device : runtime::current_device(op);
    event_ = runtime::create_event(timing, op);
  }
  Event(Event&& other) noexcept
      : event_(std::exchange(other.event_, nullptr)), device_(other.device_), timing_(other.timing_),
        recorded_(other.recorded_) {}
  Event& operator=(Event&&) = delete;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    if (event_) runtime::destroy_event(event_, device_);
  }

  EventHandle handle() const { return event_; }
  int device() const { return device_; }
  bool timing() const { return timing_; }
  bool recorded() const { return recorded_; }

  // Captures the work enqueued so far on `stream`, which must be on this event's device.
  void record(const Stream& stream, const char* op) {
    if (stream.device() >= 0 && stream.device() != device_) {
      throw std::invalid_argument(std::string(op) + ": the event belongs to CUDA device " + std::to_string(device_) +
                                  " but the stream to device " + std::to_string(stream.device()) +
                                  "; create the event on the stream's device");
    }
    DeviceGuard guard(device_, op);
    runtime::record_event(event_, stream.handle(), op);
    recorded_ = true;
  }
  // Waits on the host until the recorded work has run (at once when never recorded).
  void synchronize(const char* op) const {
    DeviceGuard guard(device_, op);
    runtime::synchronize_event(event_, op);
  }
  bool done(const char* op) const {
    DeviceGuard guard(device_, op);
    return runtime::event_done(event_, op);
  }
  // Milliseconds from this event to `end`; both recorded with timing, and `end` already complete.
  float elapsed_ms(const Event& end, const char* op) const {
    if (!timing_ || !end.timing_) {
      throw std::invalid_argument(std::string(op) + ": elapsed time needs two events created with timing=True");
    }
    if (!recorded_ || !end.recorded_) {
      throw std::invalid_argument(std::string(op) + ": both events must be recorded on a stream first");
    }
    DeviceGuard guard(device_, op);
    return runtime::elapsed_ms(event_, end.event_, op);
  }

 private:
  EventHandle event_ = nullptr;
  int device_ = -1;
  bool timing_ = true;
  bool recorded_ = false;
};

inline void Stream::wait(const Event& event, const char* op) const {
  DeviceGuard guard(device_, op);
  runtime::wait_event(handle_, event.handle(), op);
}

inline void Stream::wait(const Stream& producer, const char* op) const {
  if (same_stream(handle_, producer.handle_)) return;
  // An event without timing is the cheapest marker CUDA has; destroying it right after the wait
  // is enqueued is allowed (CUDA releases it once the device is done with it).
  Event marker(producer.device_, false, op);
  marker.record(producer, op);
  wait(marker, op);
}

// One executable CUDA graph, recorded by capturing the work enqueued on a stream.
//
// Everything enqueued between begin_capture and end_capture is recorded rather than run, and each
// launch replays it with the same pointers and parameters. So the captured work must not allocate
// or free memory, synchronise with the host, or copy from pageable host memory (CUDA refuses these
// during a capture), and every buffer it touches must stay allocated, at the same address, for as
// long as the graph is launched; new inputs are written into the same buffers before a launch.
// radedge's `*_cuda` op entries qualify: they only enqueue kernels on the given stream.
class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() {
    abandon_capture();
    if (exec_) runtime::destroy_graph(exec_, device_);
  }

  // Starts recording `stream`, which must not be the legacy default stream (CUDA cannot capture it).
  void begin_capture(std::shared_ptr<const Stream> stream, CaptureMode mode, const char* op) {
    if (!stream || stream->is_legacy_default()) {
      throw std::invalid_argument(std::string(op) +
                                  ": CUDA cannot capture the legacy default stream; capture a stream created "
                                  "with radedge.cuda.Stream() (or another non-default stream)");
    }
    if (capture_stream_) {
      throw std::invalid_argument(std::string(op) + ": this graph is already capturing; end that capture first");
    }
    DeviceGuard guard(stream->device(), op);
    runtime::begin_capture(stream->handle(), mode, op);
    capture_device_ = stream->device() >= 0 ? stream->device() : runtime::current_device(op);
    capture_stream_ = std::move(stream);
  }

  // Stops recording and instantiates what was recorded, replacing the previous executable graph.
  void end_capture(const char* op) {
    if (!capture_stream_) throw std::invalid_argument(std::string(op) + ": the graph is not capturing");
    const std::shared_ptr<const Stream> stream = std::move(capture_stream_);
    capture_stream_.reset();
    DeviceGuard guard(capture_device_, op);
    GraphExecHandle exec = runtime::end_capture(stream->handle(), op);
    if (exec_) runtime::destroy_graph(exec_, device_);
    exec_ = exec;
    device_ = capture_device_;
  }

  // Stops a capture and discards what it recorded (after an error inside the capture).
  void abandon_capture() noexcept {
    if (!capture_stream_) return;
    runtime::abandon_capture(capture_stream_->handle());
    capture_stream_.reset();
  }

  // Enqueues one replay of the graph on `stream` (any stream of the captured device).
  void launch(const Stream& stream, const char* op) const {
    if (!exec_) throw std::invalid_argument(std::string(op) + ": nothing has been captured into this graph yet");
    DeviceGuard guard(device_, op);
    runtime::launch_graph(exec_, stream.handle(), op);
  }

  bool capturing() const { return capture_stream_ != nullptr; }
  bool instantiated() const { return exec_ != nullptr; }
  int device() const { return device_; }

 private:
  std::shared_ptr<const Stream> capture_stream_;
  int capture_device_ = -1;
  GraphExecHandle exec_ = nullptr;
  int device_ = -1;
};

// An n-dimensional array in device memory: either owning a cudaMalloc allocation (C-contiguous)
// or a view of memory someone else owns, keeping that owner alive (`owner` is released when the
// last copy of the view is destroyed). Copies share the memory.
//
// `stream()` is the stream whose work the array's contents wait for: a consumer that runs on
// another stream first makes its stream wait for it. None (null) means the contents are ready.
class DeviceArray {
 public:
  DeviceArray() = default;

  // Uninitialised memory for `shape` on `device` (-1: the current one).
  static DeviceArray empty(std::vector<int64_t> shape, DType dtype, int device, const char* op) {
    check_dtype(dtype, op);
    const int64_t count = element_count_or_throw(shape, dtype, op);
    DeviceArray array;
    DeviceGuard guard(device, op);
    array.device_ = device >= 0 ? device : runtime::current_device(op);
    const size_t bytes = static_cast<size_t>(count) * itemsize(dtype);
    // cudaMalloc refuses nothing for 0 bytes but returns no address either; an empty array has none.
    void* data = bytes > 0 ? runtime::allocate_device(bytes, op) : nullptr;
    const int on = array.device_;
    array.memory_ = std::shared_ptr<void>(data, [on](void* p) {
      if (p) runtime::free_device(p, on);
    });
    array.data_ = data;
    array.strides_ = c_strides(shape, itemsize(dtype));
    array.shape_ = std::move(shape);
    array.dtype_ = dtype;
    array.owns_memory_ = true;
    return array;
  }

  // A view of `data` (the address of element [0, ..., 0]) with byte strides, on `device`.
  static DeviceArray view(void* data, std::vector<int64_t> shape, std::vector<int64_t> strides, DType dtype,
                          int device, bool readonly, std::shared_ptr<const void> owner) {
    check_dtype(dtype, "DeviceArray view");
    element_count_or_throw(shape, dtype, "DeviceArray view");
    if (strides.size() != shape.size()) throw std::invalid_argument("DeviceArray view: one stride per axis");
    DeviceArray array;
    array.data_ = data;
    array.shape_ = std::move(shape);
    array.strides_ = std::move(strides);
    array.dtype_ = dtype;
    array.device_ = device;
    array.readonly_ = readonly;
    array.memory_ = std::move(owner);
    return array;
  }

  void* data() const { return data_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  DType dtype() const { return dtype_; }
  int device() const { return device_; }
  bool readonly() const { return readonly_; }
  bool owns_memory() const { return owns_memory_; }
  size_t item_bytes() const { return itemsize(dtype_); }
  int64_t size() const { return element_count(shape_, item_bytes()); }
  size_t nbytes() const { return static_cast<size_t>(size()) * item_bytes(); }
  bool c_contiguous() const { return is_c_contiguous(shape_, strides_, item_bytes()); }
  // Shares ownership of the memory (the allocation, or the owner of a view).
  const std::shared_ptr<const void>& memory() const { return memory_; }

  const std::shared_ptr<const Stream>& stream() const { return stream_; }
  void set_stream(std::shared_ptr<const Stream> stream) { stream_ = std::move(stream); }

  // Makes `stream` wait for the work this array waits for, when that is on another stream.
  void order_before(const Stream& stream, const char* op) const {
    if (stream_) stream.wait(*stream_, op);
  }

  // Enqueues a copy of nbytes() bytes of C-ordered host memory into this C-contiguous array.
  // Pageable host memory may be reused as soon as this returns (CUDA stages it first); page-locked
  // memory must stay unchanged until `stream` has run the copy.
  void copy_from_host(const void* host, size_t bytes, const Stream& stream, const char* op) const {
    check_host_copy(bytes, op);
    if (readonly_) throw std::invalid_argument(std::string(op) + ": the device array is read-only");
    if (bytes == 0) return;
    DeviceGuard guard(device_, op);
    runtime::copy_async(data_, host, bytes, stream.handle(), op);
  }
  // Enqueues a copy of this C-contiguous array into nbytes() bytes of host memory, which must not
  // be read before `stream` has run the copy.
  void copy_to_host(void* host, size_t bytes, const Stream& stream, const char* op) const {
    check_host_copy(bytes, op);
    if (bytes == 0) return;
    DeviceGuard guard(device_, op);
    runtime::copy_async(host, data_, bytes, stream.handle(), op);
  }

 private:
  static void check_dtype(DType dtype, const char* op) {
    if (!is_supported(dtype)) {
      throw std::invalid_argument(std::string(op) + ": element type " + dtype_name(dtype) +
                                  " is not supported; radedge arrays hold bool, int8-64, uint8-64, float16, "
                                  "float32 or float64");
    }
  }
  static int64_t element_count_or_throw(const std::vector<int64_t>& shape, DType dtype, const char* op) {
    try {
      return element_count(shape, itemsize(dtype));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(std::string(op) + ": shape " + describe_shape(shape) + ": " + error.what());
    }
  }
  void check_host_copy(size_t bytes, const char* op) const {
    if (!c_contiguous()) {
      throw std::invalid_argument(std::string(op) + ": copies to and from the host need a C-contiguous device array");
    }
    if (bytes != nbytes()) {
      throw std::invalid_argument(std::string(op) + ": the host buffer holds " + std::to_string(bytes) +
                                  " bytes but the device array " + std::to_string(nbytes()));
    }
  }

  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  DType dtype_{dlpack::kDLUInt, 8, 1};
  int device_ = -1;
  bool readonly_ = false;
  bool owns_memory_ = false;
  std::shared_ptr<const void> memory_;
  std::shared_ptr<const Stream> stream_;
};

// A C-contiguous n-dimensional array in page-locked (pinned) host memory: the staging buffer that
// lets host <-> device copies run asynchronously and at full bus speed. Copies share the memory.
class PinnedArray {
 public:
  static PinnedArray empty(std::vector<int64_t> shape, DType dtype, const char* op) {
    if (!is_supported(dtype)) {
      throw std::invalid_argument(std::string(op) + ": element type " + dtype_name(dtype) + " is not supported");
    }
    int64_t count = 0;
    try {
      count = element_count(shape, itemsize(dtype));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(std::string(op) + ": shape " + describe_shape(shape) + ": " + error.what());
    }
    PinnedArray array;
    const size_t bytes = static_cast<size_t>(count) * itemsize(dtype);
    void* data = bytes > 0 ? runtime::allocate_pinned(bytes, op) : nullptr;
    array.memory_ = std::shared_ptr<void>(data, [](void* p) {
      if (p) runtime::free_pinned(p);
    });
    array.strides_ = c_strides(shape, itemsize(dtype));
    array.shape_ = std::move(shape);
    array.dtype_ = dtype;
    return array;
  }

  void* data() const { return memory_.get(); }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(element_count(shape_, itemsize(dtype_))) * itemsize(dtype_); }

 private:
  std::shared_ptr<void> memory_;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  DType dtype_{dlpack::kDLUInt, 8, 1};
};

// Device memory for the work of one enqueued call, taken from CUDA's stream-ordered pool on
// `stream` and given back on the same stream when this object dies, so the memory is released only
// after the work enqueued in between has run, without the host waiting. Where the device has no
// memory pools it falls back to cudaMalloc / cudaFree, and cudaFree waits for the device first.
// The address is aligned to `alignment` bytes (a power of two).
class ScratchBuffer {
 public:
  ScratchBuffer(size_t bytes, size_t alignment, const Stream& stream, const char* op)
      : stream_(stream.handle()) {
    DeviceGuard guard(stream.device(), op);
    device_ = stream.device() >= 0 ? stream.device() : runtime::current_device(op);
    raw_ = runtime::allocate_async(bytes + alignment - 1, stream_, &pooled_, op);
    const uintptr_t address = reinterpret_cast<uintptr_t>(raw_);
    aligned_ = reinterpret_cast<void*>((address + alignment - 1) & ~(static_cast<uintptr_t>(alignment) - 1));
  }
  ~ScratchBuffer() { runtime::free_async(raw_, stream_, pooled_, device_); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void* get() const { return aligned_; }

 private:
  StreamHandle stream_;
  int device_ = -1;
  bool pooled_ = false;
  void* raw_ = nullptr;
  void* aligned_ = nullptr;
};

}  // namespace radedge::cuda
