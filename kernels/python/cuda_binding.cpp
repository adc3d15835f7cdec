// Bindings of radedge/cuda_memory.h: Stream, Event, Graph, DeviceArray, PinnedArray and the
// zero-copy import as_device_array. The Python API over them is sdk/radedge/cuda.py.
//
// Every entry point that creates a CUDA object first checks that a device is usable, so a machine
// without a GPU (or a build without CUDA) gets CudaError "<op> (CUDA): no usable CUDA device: ..."
// rather than whichever CUDA call happens to fail first. Calls that can block (synchronisation,
// copies, allocation, graph instantiation) release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"
#include "radedge/cuda_memory.h"
#include "radedge/errors.h"

namespace py = pybind11;

namespace radedge {

#ifndef RADEDGE_WITH_CUDA
// A build without CUDA: every runtime call refuses, naming its caller; releasing is a no-op since
// nothing was ever acquired.
namespace cuda::runtime {
namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw CudaError(std::string(op) +
                  " (CUDA): radedge._kernels was built without CUDA (no CUDA compiler was found at build time); "
                  "rebuild with nvcc on PATH to use device memory, streams and graphs");
}
}  // namespace

int current_device(const char* op) { no_cuda(op); }
void set_device(int, const char* op) { no_cuda(op); }
void restore_device(int) noexcept {}
void* allocate_device(size_t, const char* op) { no_cuda(op); }
void free_device(void*, int) noexcept {}
void* allocate_pinned(size_t, const char* op) { no_cuda(op); }
void free_pinned(void*) noexcept {}
void* allocate_async(size_t, StreamHandle, bool*, const char* op) { no_cuda(op); }
void free_async(void*, StreamHandle, bool, int) noexcept {}
void copy_async(void*, const void*, size_t, StreamHandle, const char* op) { no_cuda(op); }
StreamHandle create_stream(int, const char* op) { no_cuda(op); }
void destroy_stream(StreamHandle, int) noexcept {}
void synchronize_stream(StreamHandle, const char* op) { no_cuda(op); }
bool stream_done(StreamHandle, const char* op) { no_cuda(op); }
bool stream_capturing(StreamHandle, const char* op) { no_cuda(op); }
EventHandle create_event(bool, const char* op) { no_cuda(op); }
void destroy_event(EventHandle, int) noexcept {}
void record_event(EventHandle, StreamHandle, const char* op) { no_cuda(op); }
void synchronize_event(EventHandle, const char* op) { no_cuda(op); }
bool event_done(EventHandle, const char* op) { no_cuda(op); }
float elapsed_ms(EventHandle, EventHandle, const char* op) { no_cuda(op); }
void wait_event(StreamHandle, EventHandle, const char* op) { no_cuda(op); }
void begin_capture(StreamHandle, CaptureMode, const char* op) { no_cuda(op); }
GraphExecHandle end_capture(StreamHandle, const char* op) { no_cuda(op); }
void abandon_capture(StreamHandle) noexcept {}
void launch_graph(GraphExecHandle, StreamHandle, const char* op) { no_cuda(op); }
void destroy_graph(GraphExecHandle, int) noexcept {}
PointerInfo pointer_info(const void*, const char* op) { no_cuda(op); }
}  // namespace cuda::runtime
#endif

namespace {

using cuda::DeviceArray;
using cuda::Event;
using cuda::Graph;
using cuda::PinnedArray;
using cuda::Stream;

std::vector<int64_t> shape_argument(const std::vector<int64_t>& shape, const char* op) {
  for (const int64_t extent : shape) {
    if (extent < 0) {
      throw std::invalid_argument(std::string(op) + ": shape " + cuda::describe_shape(shape) +
                                  " has a negative extent");
    }
  }
  return shape;
}

cuda::DType dtype_argument(const std::string& typestr, const char* op) {
  try {
    return cuda::dtype_from_typestr(typestr);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string(op) + ": " + error.what());
  }
}

// numpy's buffer-protocol format character for a supported type.
const char* buffer_format(cuda::DType dtype) {
  switch (dtype.code) {
    case dlpack::kDLBool:
      return "?";
    case dlpack::kDLInt:
      return dtype.bits == 8 ? "b" : dtype.bits == 16 ? "h" : dtype.bits == 32 ? "i" : "q";
    case dlpack::kDLUInt:
      return dtype.bits == 8 ? "B" : dtype.bits == 16 ? "H" : dtype.bits == 32 ? "I" : "Q";
    default:
      return dtype.bits == 16 ? "e" : dtype.bits == 32 ? "f" : "d";
  }
}

py::tuple int_tuple(const std::vector<int64_t>& values) {
  py::tuple tuple(values.size());
  for (size_t i = 0; i < values.size(); ++i) tuple[i] = values[i];
  return tuple;
}

py::int_ handle_value(Stream const& stream) { return py::int_(reinterpret_cast<uintptr_t>(stream.handle())); }

cuda::CaptureMode capture_mode(const std::string& mode) {
  if (mode == "global") return cuda::CaptureMode::kGlobal;
  if (mode == "thread_local") return cuda::CaptureMode::kThreadLocal;
  if (mode == "relaxed") return cuda::CaptureMode::kRelaxed;
  throw std::invalid_argument("Graph capture mode must be 'global', 'thread_local' or 'relaxed'; got '" + mode + "'");
}

// Checks that a numpy array matches a C-contiguous device array for a host copy.
void check_host_array(const DeviceArray& device, const py::array& host, bool writes_host, const char* op) {
  const cuda::DType host_dtype = dtype_argument(py::str(host.dtype().attr("str")), op);
  std::vector<int64_t> host_shape(host.shape(), host.shape() + host.ndim());
  if (!cuda::same_dtype(host_dtype, device.dtype()) || host_shape != device.shape()) {
    throw std::invalid_argument(std::string(op) + ": the host array is " + cuda::dtype_name(host_dtype) + " " +
                                cuda::describe_shape(host_shape) + " but the device array " +
                                cuda::dtype_name(device.dtype()) + " " + cuda::describe_shape(device.shape()));
  }
  if (!(host.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(op) + ": the host array must be C-contiguous; pass "
                                "numpy.ascontiguousarray(array)");
  }
  if (writes_host && !host.writeable()) throw std::invalid_argument(std::string(op) + ": the host array is read-only");
  if (!device.c_contiguous()) {
    throw std::invalid_argument(std::string(op) + ": the device array is a strided view " +
                                cuda::describe_shape(device.strides()) +
                                " (byte strides); host copies need a C-contiguous one");
  }
}

py::dict cuda_array_interface(const DeviceArray& array) {
  py::dict interface;
  const std::string type = cuda::typestr(array.dtype());
  interface["shape"] = int_tuple(array.shape());
  interface["typestr"] = type;
  interface["descr"] = py::make_tuple(py::make_tuple("", type));
  interface["data"] = py::make_tuple(py::int_(reinterpret_cast<uintptr_t>(array.data())), array.readonly());
  interface["strides"] = array.c_contiguous() ? py::object(py::none()) : py::object(int_tuple(array.strides()));
  interface["version"] = 3;
  // CAI v3: a consumer waits for this stream before it reads; None: nothing to wait for.
  interface["stream"] = array.stream() ? py::object(py::int_(cuda::stream_protocol_value(array.stream()->handle())))
                                       : py::object(py::none());
  return interface;
}

py::object dlpack(const DeviceArray& array, py::object stream, py::object max_version, py::object dl_device,
                  py::object copy) {
  constexpr const char* kOp = "DeviceArray.__dlpack__";
  if (!dl_device.is_none()) {
    const py::tuple device(dl_device);
    if (device.size() != 2 || py::int_(device[0]).cast<int>() != dlpack::kDLCUDA ||
        py::int_(device[1]).cast<int>() != array.device()) {
      throw py::buffer_error(std::string(kOp) + ": the array lives on CUDA device " + std::to_string(array.device()) +
                             " and radedge exports it only there, without copying");
    }
  }
  if (!copy.is_none() && copy.cast<bool>()) {
    throw py::buffer_error(std::string(kOp) +
                           ": radedge exports device arrays without copying (copy=True asked for a copy); copy it "
                           "on the consumer's side");
  }
  int64_t consumer = 1;  // None: the legacy default stream (DLPack's rule for CUDA)
  if (!stream.is_none()) {
    if (!PyLong_Check(stream.ptr())) throw py::type_error(std::string(kOp) + ": stream must be an int or None");
    consumer = stream.cast<int64_t>();
    if (consumer == 0 || consumer < -1) {
      throw std::invalid_argument(std::string(kOp) + ": stream " + std::to_string(consumer) +
                                  " is not a CUDA stream value (DLPack: -1, 1, 2 or a cudaStream_t)");
    }
  }
  // -1: the consumer orders the work itself.
  if (consumer != -1 && array.stream()) {
    const Stream consumer_stream =
        Stream::borrow(reinterpret_cast<cuda::StreamHandle>(static_cast<uintptr_t>(consumer)), array.device());
    consumer_stream.wait(*array.stream(), kOp);
  }
  bool versioned = false;
  if (!max_version.is_none()) {
    const py::tuple version(max_version);
    versioned = version.size() >= 1 && py::int_(version[0]).cast<int64_t>() >= 1;
  }
  return to_dlpack_capsule(array, versioned);
}

void bind_stream(py::module_& m) {
  py::class_<Stream, std::shared_ptr<Stream>>(m, "Stream",
                                              "A CUDA stream: owned (created here, destroyed with this object) or "
                                              "borrowed (someone else's handle, never destroyed here).")
      .def(py::init([](int device, int priority) {
             require_cuda("Stream");
             py::gil_scoped_release release;
             return std::make_shared<Stream>(Stream::create(device, priority, "Stream"));
           }),
           py::arg("device") = -1, py::arg("priority") = 0,
           "A new non-blocking stream on `device` (-1: the current device); lower priority values run first.")
      .def_static(
          "wrap",
          [](uintptr_t handle, int device) {
            require_cuda("Stream.wrap");
            return std::make_shared<Stream>(Stream::borrow(reinterpret_cast<cuda::StreamHandle>(handle), device));
          },
          py::arg("handle"), py::arg("device") = -1,
          "Borrows an existing cudaStream_t (an int; 0 or 1: the legacy default stream, 2: the per-thread default "
          "stream) on `device` (-1: whichever device is current when it is used). Never destroys it.")
      .def_property_readonly("handle", &handle_value, "The cudaStream_t as an int (0: the legacy default stream).")
      .def_property_readonly("device", &Stream::device, "CUDA device ordinal; -1: the current device at use.")
      .def_property_readonly("owned", &Stream::owned, "True when radedge created it and destroys it.")
      .def(
          "synchronize",
          [](const Stream& self) {
            py::gil_scoped_release release;
            self.synchronize("Stream.synchronize");
          },
          "Waits until all work enqueued so far has run.")
      .def("query", [](const Stream& self) { return self.done("Stream.query"); },
           "True when all work enqueued so far has run.")
      .def_property_readonly(
          "capturing", [](const Stream& self) { return self.capturing("Stream.capturing"); },
          "True while a graph capture records this stream.")
      .def(
          "wait_event", [](const Stream& self, const Event& event) { self.wait(event, "Stream.wait_event"); },
          py::arg("event"), "Work enqueued from now on runs after `event`'s recorded work.")
      .def(
          "wait_stream", [](const Stream& self, const Stream& other) { self.wait(other, "Stream.wait_stream"); },
          py::arg("other"), "Work enqueued from now on runs after the work enqueued so far on `other`.");
}

void bind_event(py::module_& m) {
  py::class_<Event, std::shared_ptr<Event>>(m, "Event", "A CUDA event on one device.")
      .def(py::init([](int device, bool timing) {
             require_cuda("Event");
             return std::make_shared<Event>(device, timing, "Event");
           }),
           py::arg("device") = -1, py::arg("timing") = true,
           "A new event on `device` (-1: the current one); timing=False makes a cheaper marker without elapsed "
           "times.")
      .def(
          "record",
          [](Event& self, py::handle stream) {
            const std::shared_ptr<Stream> on = stream_argument(stream, "Event.record");
            self.record(*on, "Event.record");
          },
          py::arg("stream") = py::none(), "Captures the work enqueued so far on `stream` (None: legacy default).")
      .def(
          "synchronize",
          [](const Event& self) {
            py::gil_scoped_release release;
            self.synchronize("Event.synchronize");
          },
          "Waits until the recorded work has run.")
      .def("query", [](const Event& self) { return self.done("Event.query"); },
           "True when the recorded work has run (or nothing was recorded).")
      .def(
          "elapsed_ms",
          [](const Event& self, const Event& end) {
            py::gil_scoped_release release;
            if (end.recorded()) end.synchronize("Event.elapsed_ms");
            return self.elapsed_ms(end, "Event.elapsed_ms");
          },
          py::arg("end"), "Milliseconds from this event to `end` (waits for `end` first).")
      .def_property_readonly("device", &Event::device)
      .def_property_readonly("timing", &Event::timing)
      .def_property_readonly("recorded", &Event::recorded);
}

void bind_graph(py::module_& m) {
  py::class_<Graph, std::shared_ptr<Graph>>(
      m, "Graph",
      "One executable CUDA graph recorded by stream capture. Captured work must not allocate, free, synchronise "
      "or copy from pageable host memory, and the buffers it touches must stay allocated while the graph is "
      "launched.")
      .def(py::init([] {
        require_cuda("Graph");
        return std::make_shared<Graph>();
      }))
      .def(
          "begin_capture",
          [](Graph& self, py::handle stream, const std::string& mode) {
            const std::shared_ptr<Stream> on = stream_argument(stream, "Graph.begin_capture");
            self.begin_capture(on, capture_mode(mode), "Graph.begin_capture");
          },
          py::arg("stream"), py::arg("mode") = "thread_local",
          "Starts recording `stream` (not the legacy default stream).")
      .def(
          "end_capture",
          [](Graph& self) {
            py::gil_scoped_release release;
            self.end_capture("Graph.end_capture");
          },
          "Stops recording and instantiates the graph, replacing the previous one.")
      .def("abandon_capture", &Graph::abandon_capture, "Stops recording and discards what was recorded.")
      .def(
          "launch",
          [](const Graph& self, py::handle stream) {
            const std::shared_ptr<Stream> on = stream_argument(stream, "Graph.launch");
            self.launch(*on, "Graph.launch");
          },
          py::arg("stream") = py::none(), "Enqueues one replay on `stream` (None: the legacy default stream).")
      .def_property_readonly("capturing", &Graph::capturing)
      .def_property_readonly("instantiated", &Graph::instantiated)
      .def_property_readonly("device", &Graph::device);
}

void bind_device_array(py::module_& m) {
  py::class_<DeviceArray>(m, "DeviceArray",
                          "An n-dimensional array in CUDA device memory, owning it or viewing another library's "
                          "(whose owner it keeps alive). Exports __cuda_array_interface__ v3 and DLPack.")
      .def_static(
          "empty",
          [](const std::vector<int64_t>& shape, const std::string& typestr, int device) {
            constexpr const char* kOp = "DeviceArray.empty";
            std::vector<int64_t> extents = shape_argument(shape, kOp);
            const cuda::DType dtype = dtype_argument(typestr, kOp);
            require_cuda(kOp);
            py::gil_scoped_release release;
            return DeviceArray::empty(std::move(extents), dtype, device, kOp);
          },
          py::arg("shape"), py::arg("typestr"), py::arg("device") = -1,
          "Uninitialised C-contiguous memory; typestr is numpy's ('<f4', '|u1', ...).")
      .def_property_readonly("ptr", [](const DeviceArray& self) { return reinterpret_cast<uintptr_t>(self.data()); })
      .def_property_readonly("shape", [](const DeviceArray& self) { return int_tuple(self.shape()); })
      .def_property_readonly("strides", [](const DeviceArray& self) { return int_tuple(self.strides()); },
                             "Byte strides.")
      .def_property_readonly("typestr", [](const DeviceArray& self) { return cuda::typestr(self.dtype()); })
      .def_property_readonly("device", &DeviceArray::device)
      .def_property_readonly("readonly", &DeviceArray::readonly)
      .def_property_readonly("owns_memory", &DeviceArray::owns_memory)
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("c_contiguous", &DeviceArray::c_contiguous)
      .def_property(
          "stream",
          [](const DeviceArray& self) { return std::const_pointer_cast<Stream>(self.stream()); },
          [](DeviceArray& self, py::handle stream) {
            self.set_stream(stream.is_none() ? nullptr : stream_argument(stream, "DeviceArray.stream"));
          },
          "The stream whose work the contents wait for (None: ready).")
      .def(
          "copy_from_host",
          [](DeviceArray& self, const py::array& host, py::handle stream, bool synchronize) {
            constexpr const char* kOp = "DeviceArray.copy_from_host";
            check_host_array(self, host, false, kOp);
            const std::shared_ptr<Stream> on = stream_argument(stream, kOp);
            // Read from the numpy array while the GIL is held; `host` keeps its memory alive after.
            const void* source = host.data();
            const size_t bytes = static_cast<size_t>(host.nbytes());
            {
              py::gil_scoped_release release;
              self.order_before(*on, kOp);
              self.copy_from_host(source, bytes, *on, kOp);
              if (synchronize) on->synchronize(kOp);
            }
            self.set_stream(synchronize ? nullptr : on);
          },
          py::arg("host").noconvert(), py::arg("stream"), py::arg("synchronize"),
          "Copies a C-contiguous numpy array of the same dtype and shape in, on `stream` (None: the legacy default "
          "stream), after the array's own stream; waits for the copy when `synchronize`.")
      .def(
          "copy_to_host",
          [](const DeviceArray& self, py::array host, py::handle stream, bool synchronize) {
            constexpr const char* kOp = "DeviceArray.copy_to_host";
            check_host_array(self, host, true, kOp);
            const std::shared_ptr<Stream> on = stream_argument(stream, kOp);
            void* destination = host.mutable_data();
            const size_t bytes = static_cast<size_t>(host.nbytes());
            py::gil_scoped_release release;
            self.order_before(*on, kOp);
            self.copy_to_host(destination, bytes, *on, kOp);
            if (synchronize) on->synchronize(kOp);
          },
          py::arg("host").noconvert(), py::arg("stream"), py::arg("synchronize"),
          "Copies out into a writable C-contiguous numpy array of the same dtype and shape, on `stream` after the "
          "array's own stream; waits for the copy when `synchronize`.")
      .def(
          "copy_from_device",
          [](DeviceArray& self, py::handle source, py::handle stream) {
            constexpr const char* kOp = "DeviceArray.copy_from_device";
            const std::shared_ptr<Stream> on = stream_argument(stream, kOp);
            DeviceView from = as_device_view(
                source, "source", DeviceViewRequirements{false, {}, -1, Layout::kCContiguous, ""}, *on);
            if (!cuda::same_dtype(from.dtype, self.dtype()) || from.shape != self.shape()) {
              throw std::invalid_argument(std::string(kOp) + ": the source is " + from.describe() +
                                          " but the device array " + cuda::dtype_name(self.dtype()) + " " +
                                          cuda::describe_shape(self.shape()));
            }
            if (self.readonly()) throw std::invalid_argument(std::string(kOp) + ": the device array is read-only");
            if (!self.c_contiguous()) {
              throw std::invalid_argument(std::string(kOp) + ": the device array is a strided view; copies need a "
                                          "C-contiguous one");
            }
            require_cuda(kOp);
            const int device = prepare_device_views({&from}, *on, kOp);
            if (self.device() != device) {
              throw std::invalid_argument(std::string(kOp) + ": the device array is on CUDA device " +
                                          std::to_string(self.device()) + " but the source and stream on device " +
                                          std::to_string(device) + "; copy within one device");
            }
            void* destination = self.data();
            const void* origin = from.data;
            const size_t bytes = self.nbytes();
            {
              py::gil_scoped_release release;
              self.order_before(*on, kOp);
              cuda::DeviceGuard guard(device, kOp);
              if (bytes > 0) cuda::runtime::copy_async(destination, origin, bytes, on->handle(), kOp);
            }
            self.set_stream(on);
          },
          py::arg("source"), py::arg("stream"),
          "Enqueues a copy of a C-contiguous CUDA array of the same dtype and shape (any exporter) into this "
          "C-contiguous array, on `stream` (None: the legacy default stream) after the array's own stream; the "
          "array's stream becomes `stream`. Not waited for.")
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def("__dlpack__", &dlpack, py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
           py::arg("dl_device") = py::none(), py::arg("copy") = py::none(),
           "A DLPack capsule of this array (versioned when max_version >= (1, 0)); the consumer's `stream` first "
           "waits for the array's own stream.")
      .def("__dlpack_device__",
           [](const DeviceArray& self) { return py::make_tuple(static_cast<int>(dlpack::kDLCUDA), self.device()); });
}

void bind_pinned_array(py::module_& m) {
  py::class_<PinnedArray>(m, "PinnedArray", py::buffer_protocol(),
                          "A C-contiguous array in page-locked host memory; numpy reads and writes it through the "
                          "buffer protocol (numpy.asarray(pinned)).")
      .def_static(
          "empty",
          [](const std::vector<int64_t>& shape, const std::string& typestr) {
            constexpr const char* kOp = "PinnedArray.empty";
            std::vector<int64_t> extents = shape_argument(shape, kOp);
            const cuda::DType dtype = dtype_argument(typestr, kOp);
            require_cuda(kOp);
            py::gil_scoped_release release;
            return PinnedArray::empty(std::move(extents), dtype, kOp);
          },
          py::arg("shape"), py::arg("typestr"))
      .def_property_readonly("ptr", [](const PinnedArray& self) { return reinterpret_cast<uintptr_t>(self.data()); })
      .def_property_readonly("shape", [](const PinnedArray& self) { return int_tuple(self.shape()); })
      .def_property_readonly("typestr", [](const PinnedArray& self) { return cuda::typestr(self.dtype()); })
      .def_property_readonly("nbytes", &PinnedArray::nbytes)
      .def_buffer([](PinnedArray& self) {
        // An empty array has no allocation; the buffer protocol still wants an address.
        static unsigned char no_elements = 0;
        return py::buffer_info(self.data() ? self.data() : &no_elements,
                               static_cast<py::ssize_t>(cuda::itemsize(self.dtype())),
                               buffer_format(self.dtype()), static_cast<py::ssize_t>(self.shape().size()),
                               std::vector<py::ssize_t>(self.shape().begin(), self.shape().end()),
                               std::vector<py::ssize_t>(self.strides().begin(), self.strides().end()), false);
      });
}

}  // namespace

void bind_cuda(py::module_& m) {
  bind_stream(m);
  bind_event(m);
  bind_graph(m);
  bind_device_array(m);
  bind_pinned_array(m);

  m.def(
      "as_device_array",
      [](py::handle obj, py::handle stream) {
        constexpr const char* kOp = "as_device_array";
        const std::shared_ptr<Stream> on = stream_argument(stream, kOp);
        DeviceView view = as_device_view(obj, "array", DeviceViewRequirements{}, *on);
        require_cuda(kOp);
        prepare_device_views({&view}, *on, kOp);
        DeviceArray array = DeviceArray::view(view.data, view.shape, view.strides, view.dtype, view.device,
                                              view.readonly, hold_python_object(view.owner));
        if (!stream.is_none()) array.set_stream(on);
        return array;
      },
      py::arg("obj"), py::arg("stream") = py::none(),
      "A zero-copy DeviceArray view of a CUDA array exported through __cuda_array_interface__ or DLPack (or of a "
      "DLPack capsule), keeping the exporter alive. With a stream, the exporter's pending work is ordered before "
      "it and the view's stream is set to it.");
}

}  // namespace radedge
