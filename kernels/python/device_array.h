// Device arrays at the pybind11 edge: how an op binding takes a CUDA array from Python without a
// copy, whoever made it (radedge.cuda.DeviceArray, a torch CUDA tensor, a CuPy array, a pycuda
// GPUArray, a DLPack capsule), and refuses clearly what it cannot use.
//
// An op binding with CUDA array arguments does these steps, in this order:
//
//   const std::shared_ptr<cuda::Stream> stream = stream_argument(stream_object, "nms");
//   DeviceView boxes = as_device_view(boxes_object, "boxes", kBoxes, *stream);     // for every array,
//   DeviceView keep = as_device_view(keep_object, "keep", kKeep, *stream);         // metadata only
//   check_nms_args(...);                                     // the op's own shape checks, also metadata
//   require_cuda("nms");                                     // "no usable CUDA device: <why>"
//   const int device = prepare_device_views({&boxes, &keep}, *stream, "nms");    // CUDA calls start here
//   {
//     py::gil_scoped_release release;
//     cuda::DeviceGuard guard(device, "nms");
//     nms_cuda(..., boxes.data ..., stream->handle());
//   }
//
// with requirements such as
//
//   const DeviceViewRequirements kBoxes{false, {kFloat32}, 2, Layout::kCContiguous, "float32 [K, 4]"};
//
// Step 1 (as_device_view) reads the exporter's metadata and refuses, with a ValueError naming the
// argument, what arrived and what to do: host arrays (numpy, CPU tensors, pinned host memory),
// other devices' arrays (ROCm, ...), unsupported element types, the wrong rank or layout, and
// read-only arrays where the op writes. For __cuda_array_interface__ it makes no CUDA call at
// all, so every argument is checked before CUDA is touched. For DLPack it calls the exporter's
// __dlpack__(stream=...), which makes the exporter order its pending work before `stream`
// (DLPack's rule), and takes the capsule over only once it is accepted.
//
// Step 2 (prepare_device_views) looks up the device of __cuda_array_interface__ pointers, refuses
// arrays that are on another device than the stream or in host memory, and makes the stream wait
// for the stream an exporter named in __cuda_array_interface__["stream"] (CAI v3's rule). During a
// CUDA graph capture no such ordering is added: it would be recorded into the graph with the
// exporter's work of capture time; whoever launches the graph orders it after the producers.
//
// Lifetime: a DeviceView holds a reference to the exporter (or to the consumed DLPack tensor,
// whose deleter runs when the view dies), so the memory stays allocated while the binding uses it.
// An op that only enqueues work returns before that work runs: as with every CUDA library, the
// caller keeps the arrays alive (and unchanged) until the stream has run the op. DeviceView holds
// Python references: create and destroy it with the GIL held (declare it outside the
// gil_scoped_release block) and read only its plain fields inside.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "radedge/cuda_memory.h"

namespace py = pybind11;

namespace radedge {

// Element types, for DeviceViewRequirements::dtypes.
constexpr DLDataType kBool{dlpack::kDLBool, 8, 1};
constexpr DLDataType kUint8{dlpack::kDLUInt, 8, 1};
constexpr DLDataType kUint16{dlpack::kDLUInt, 16, 1};
constexpr DLDataType kInt16{dlpack::kDLInt, 16, 1};
constexpr DLDataType kUint32{dlpack::kDLUInt, 32, 1};
constexpr DLDataType kUint64{dlpack::kDLUInt, 64, 1};
constexpr DLDataType kInt32{dlpack::kDLInt, 32, 1};
constexpr DLDataType kInt64{dlpack::kDLInt, 64, 1};
constexpr DLDataType kFloat16{dlpack::kDLFloat, 16, 1};
constexpr DLDataType kFloat32{dlpack::kDLFloat, 32, 1};

enum class Layout : int {
  kAny,          // any strides, negative and overlapping ones included
  kRowsPadded,   // C order with a contiguous last axis; each other axis steps a whole number of
                 // elements, at least the extent of the axis after it (pitched rows: cudaMallocPitch,
                 // a crop of a larger image)
  kCContiguous,  // C order without gaps
};

// What an op requires of one array argument. Empty `dtypes` accepts every supported type; a
// negative `ndim` accepts every rank. `expected` describes the argument in messages
// ("float32 [K, 4] boxes in pixels"); when empty, one is made from dtypes and ndim.
struct DeviceViewRequirements {
  bool writable = false;
  std::vector<DLDataType> dtypes;
  int ndim = -1;
  Layout layout = Layout::kAny;
  std::string expected;
};

// One CUDA array argument, zero-copy.
struct DeviceView {
  const char* name = "";       // the argument's name, for messages
  void* data = nullptr;        // address of element [0, ..., 0] (byte offsets applied)
  int device = -1;             // CUDA device ordinal; -1 until prepare_device_views for CAI arrays
  DLDataType dtype{};          // DLPack code / bits / lanes (lanes is 1)
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // bytes
  bool readonly = false;
  const char* protocol = "";   // "__cuda_array_interface__ v3", "DLPack 1.1", ...
  py::object owner;            // keeps the memory alive (see the lifetime note above)
  // __cuda_array_interface__ v3 "stream": the exporter's pending work is on this stream.
  bool has_producer_stream = false;
  cuda::StreamHandle producer_stream = nullptr;

  size_t itemsize() const { return cuda::itemsize(dtype); }
  int64_t size() const { return cuda::element_count(shape, itemsize()); }
  bool c_contiguous() const { return cuda::is_c_contiguous(shape, strides, itemsize()); }
  // Stride of `axis` in elements (the layout checks guarantee a whole number for kRowsPadded and
  // kCContiguous arrays); an axis of extent <= 1 reports the C-contiguous stride.
  int64_t element_stride(size_t axis) const;
  // "float32 (2, 3) CUDA array (DLPack 1.1)".
  std::string describe() const;
};

// Step 1: the metadata of `obj`, checked against `required`. `stream` is where the op will run
// (its device must be the array's; DLPack exporters order their work before it). Throws
// std::invalid_argument (ValueError) for anything unusable; see the header comment.
DeviceView as_device_view(py::handle obj, const char* name, const DeviceViewRequirements& required,
                          const cuda::Stream& stream);

// Step 1 with no requirement but `writable`, for the legacy default stream of the current device.
DeviceView as_device_view(py::handle obj, const char* name, bool writable);

// Step 2: resolves and checks the views' device, adds the CAI stream ordering, and returns the
// device to run on (the stream's).
int prepare_device_views(const std::vector<DeviceView*>& views, const cuda::Stream& stream, const char* op);

// Metadata checks an op adds before step 2, for outputs written by its kernels:
// refuses (std::invalid_argument) a view whose address is not a multiple of `alignment` bytes
// (atomics on 64-bit counters need 8), naming the argument;
void require_aligned(const DeviceView& view, size_t alignment);
// refuses outputs that share bytes with one another or with an input: a kernel would read what
// it writes, or one result would land on another. Spans come from the shape and strides.
void refuse_overlaps(const std::vector<const DeviceView*>& written, const std::vector<const DeviceView*>& read,
                     const char* op);

// The `stream` argument of an op binding: None means the legacy default stream of the current
// device; otherwise a radedge._kernels.Stream (radedge.cuda.as_stream turns torch / CuPy / pycuda
// streams and raw handles into one). Throws std::invalid_argument for anything else.
std::shared_ptr<cuda::Stream> stream_argument(py::handle obj, const char* op);

// Throws CudaError "<op> (CUDA): no usable CUDA device: <why>" unless a CUDA device is visible
// (and the module was built with CUDA). Op bindings call it after step 1, before step 2.
void require_cuda(const char* op);

// A DLPack capsule ("dltensor", or "dltensor_versioned" with DLPack 1.1 flags when `versioned`)
// sharing `array`'s memory: the capsule, or its consumer once renamed, keeps the memory alive until
// the DLPack deleter runs. Throws pybind11::buffer_error when a stride is not a whole number of
// elements, or when a read-only array would have to go out unversioned (no flag can say so).
py::object to_dlpack_capsule(const cuda::DeviceArray& array, bool versioned);

// A shared owner of a Python object that can be released without the GIL held: its deleter takes
// the GIL. For cuda::DeviceArray::view owners and other C++ holders of Python objects.
std::shared_ptr<const void> hold_python_object(py::object obj);

}  // namespace radedge
