// Zero-copy import of CUDA arrays at the binding edge (see device_array.h for the contract).
#include "device_array.h"

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "radedge/device.h"
#include "radedge/errors.h"

namespace radedge {
namespace {

constexpr int kMaxDimensions = 64;
// Name of the capsule a consumed DLPack tensor lives in while a DeviceView uses it.
constexpr const char* kOwnerCapsuleName = "radedge.consumed_dltensor";

[[noreturn]] void refuse(const char* name, const std::string& message) {
  throw std::invalid_argument(std::string(name) + " " + message);
}

std::string type_name(py::handle obj) {
  const py::handle type(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())));
  const std::string qualname = py::str(type.attr("__qualname__"));
  const std::string module = py::hasattr(type, "__module__") ? std::string(py::str(type.attr("__module__"))) : "";
  return module.empty() || module == "builtins" ? qualname : module + "." + qualname;
}

std::string hex(const void* address) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(address)));
  return text;
}

const char* device_type_name(int32_t type) {
  switch (type) {
    case dlpack::kDLCPU:
      return "CPU";
    case dlpack::kDLCUDA:
      return "CUDA";
    case dlpack::kDLCUDAHost:
      return "CUDA page-locked host";
    case dlpack::kDLOpenCL:
      return "OpenCL";
    case dlpack::kDLVulkan:
      return "Vulkan";
    case dlpack::kDLMetal:
      return "Metal";
    case dlpack::kDLROCM:
      return "ROCm";
    case dlpack::kDLROCMHost:
      return "ROCm host";
    case dlpack::kDLCUDAManaged:
      return "CUDA managed";
    case dlpack::kDLOneAPI:
      return "oneAPI";
    case dlpack::kDLWebGPU:
      return "WebGPU";
    default:
      return "non-CUDA";
  }
}

const char* kUploadHint =
    "copy it to the GPU first: radedge.cuda.DeviceArray.from_numpy(array, stream=...), tensor.cuda() in torch, "
    "cupy.asarray(array) in CuPy";

// Refuses an array that a DLPack device tuple places outside CUDA device memory.
void check_dlpack_device_type(int32_t type, const char* name, const std::string& what) {
  if (type == dlpack::kDLCUDA || type == dlpack::kDLCUDAManaged) return;
  if (type == dlpack::kDLCPU) {
    refuse(name, "must be a CUDA device array; got " + what + " in host (CPU) memory: " + kUploadHint);
  }
  if (type == dlpack::kDLCUDAHost) {
    refuse(name, "must be in CUDA device memory; got " + what + " in page-locked host memory: " + kUploadHint);
  }
  refuse(name, std::string("must be a CUDA device array; got ") + what + " on a " + device_type_name(type) +
                   " device (DLPack device type " + std::to_string(type) + "), which radedge's CUDA ops cannot read");
}

std::string expected_text(const DeviceViewRequirements& required) {
  if (!required.expected.empty()) return required.expected;
  std::string text;
  for (size_t i = 0; i < required.dtypes.size(); ++i) {
    text += (i == 0 ? "" : i + 1 == required.dtypes.size() ? " or " : ", ") + cuda::dtype_name(required.dtypes[i]);
  }
  if (text.empty()) text = "an array";
  if (required.ndim >= 0) text += " with " + std::to_string(required.ndim) + " dimensions";
  return text;
}

bool strides_fit(const DeviceView& view, Layout layout) {
  if (layout == Layout::kAny) return true;
  if (layout == Layout::kCContiguous) return view.c_contiguous();
  for (const int64_t extent : view.shape) {
    if (extent == 0) return true;  // an empty array has no layout
  }
  const int64_t item = static_cast<int64_t>(view.itemsize());
  int64_t inner = item;  // bytes that one step of the current axis must at least skip
  for (size_t i = view.shape.size(); i-- > 0;) {
    const int64_t stride = view.shape[i] > 1 ? view.strides[i] : inner;
    if (i + 1 == view.shape.size()) {
      if (stride != item) return false;
    } else if (stride <= 0 || stride % item != 0 || stride < inner) {
      return false;
    }
    if (__builtin_mul_overflow(stride, view.shape[i], &inner)) return false;
  }
  return true;
}

void check_requirements(const DeviceView& view, const DeviceViewRequirements& required) {
  const std::string expected = expected_text(required);
  bool dtype_ok = required.dtypes.empty();
  for (const DLDataType& dtype : required.dtypes) dtype_ok = dtype_ok || cuda::same_dtype(dtype, view.dtype);
  if (!dtype_ok || (required.ndim >= 0 && static_cast<int>(view.shape.size()) != required.ndim)) {
    refuse(view.name, "must be " + expected + "; got " + view.describe());
  }
  if (!strides_fit(view, required.layout)) {
    const char* layout = required.layout == Layout::kCContiguous
                             ? "C-contiguous (elements in row-major order, no gaps)"
                             : "in row-major order with a contiguous last axis (rows may be padded)";
    refuse(view.name, std::string("must be ") + layout + "; got " + view.describe() + " with byte strides " +
                          cuda::describe_shape(view.strides) +
                          ". Make it contiguous first (torch: .contiguous(), CuPy: cupy.ascontiguousarray)");
  }
  if (required.writable && view.readonly) {
    refuse(view.name, "is read-only (" + view.describe() + ") but the op writes into it: pass a writable array");
  }
}

int64_t as_int64(py::handle value, const char* name, const char* field) {
  if (!PyLong_Check(value.ptr())) {
    refuse(name, std::string("has a __cuda_array_interface__ whose ") + field + " holds " + type_name(value) +
                     ", not an integer");
  }
  try {
    return value.cast<int64_t>();
  } catch (const py::cast_error&) {
    refuse(name, std::string("has a __cuda_array_interface__ whose ") + field + " is out of range");
  }
}

std::vector<int64_t> int_tuple(py::handle value, const char* name, const char* field) {
  if (!PyTuple_Check(value.ptr()) && !PyList_Check(value.ptr())) {
    refuse(name, std::string("has a __cuda_array_interface__ whose ") + field + " is a " + type_name(value) +
                     ", not a tuple of integers");
  }
  std::vector<int64_t> values;
  for (const py::handle item : value) values.push_back(as_int64(item, name, field));
  return values;
}

// __cuda_array_interface__ versions 2 and 3 (Numba's specification): metadata only.
DeviceView view_from_cai(py::handle obj, const char* name) {
  py::object interface;
  try {
    interface = obj.attr("__cuda_array_interface__");
  } catch (py::error_already_set& error) {
    refuse(name, "(" + type_name(obj) + ") could not export its __cuda_array_interface__: " + error.what());
  }
  if (!PyDict_Check(interface.ptr())) {
    refuse(name, "has a __cuda_array_interface__ that is a " + type_name(interface) + ", not a dict");
  }
  const py::dict fields = py::reinterpret_borrow<py::dict>(interface);
  for (const char* key : {"shape", "typestr", "data", "version"}) {
    if (!fields.contains(key)) refuse(name, std::string("has a __cuda_array_interface__ without '") + key + "'");
  }
  const int64_t version = as_int64(fields["version"], name, "version");
  if (version != 2 && version != 3) {
    refuse(name, "has a __cuda_array_interface__ of version " + std::to_string(version) +
                     "; radedge reads versions 2 and 3");
  }
  DeviceView view;
  view.name = name;
  view.protocol = version == 3 ? "__cuda_array_interface__ v3" : "__cuda_array_interface__ v2";
  view.shape = int_tuple(fields["shape"], name, "shape");
  if (view.shape.size() > static_cast<size_t>(kMaxDimensions)) {
    refuse(name, "has " + std::to_string(view.shape.size()) + " dimensions; radedge reads at most " +
                     std::to_string(kMaxDimensions));
  }
  const py::object typestr = fields["typestr"];
  if (!PyUnicode_Check(typestr.ptr())) refuse(name, "has a __cuda_array_interface__ whose typestr is not a str");
  try {
    view.dtype = cuda::dtype_from_typestr(typestr.cast<std::string>());
  } catch (const std::invalid_argument& error) {
    refuse(name, std::string("(__cuda_array_interface__): ") + error.what());
  }
  int64_t count = 0;
  try {
    count = cuda::element_count(view.shape, view.itemsize());
  } catch (const std::invalid_argument& error) {
    refuse(name, "has shape " + cuda::describe_shape(view.shape) + ": " + error.what());
  }
  const py::object data = fields["data"];
  if (!PyTuple_Check(data.ptr()) || PyTuple_GET_SIZE(data.ptr()) != 2) {
    refuse(name, "has a __cuda_array_interface__ whose data is not a (pointer, read_only) tuple");
  }
  const py::tuple data_tuple = py::reinterpret_borrow<py::tuple>(data);
  if (!PyLong_Check(data_tuple[0].ptr())) {
    refuse(name, "has a __cuda_array_interface__ data pointer that is not an int");
  }
  uint64_t address = 0;
  try {
    address = data_tuple[0].cast<uint64_t>();
  } catch (const py::cast_error&) {
    refuse(name, "has a __cuda_array_interface__ data pointer out of range");
  }
  view.data = reinterpret_cast<void*>(static_cast<uintptr_t>(address));
  view.readonly = py::bool_(data_tuple[1]);
  if (view.data == nullptr && count > 0) {
    refuse(name, "has a null data pointer for " + std::to_string(count) + " elements");
  }
  const py::object strides = fields.contains("strides") ? py::object(fields["strides"]) : py::none();
  if (strides.is_none()) {
    view.strides = cuda::c_strides(view.shape, view.itemsize());
  } else {
    view.strides = int_tuple(strides, name, "strides");
    if (view.strides.size() != view.shape.size()) {
      refuse(name, "has " + std::to_string(view.strides.size()) + " strides for " + std::to_string(view.shape.size()) +
                       " dimensions in its __cuda_array_interface__");
    }
  }
  if (fields.contains("mask") && !py::object(fields["mask"]).is_none()) {
    refuse(name, "is a masked array (its __cuda_array_interface__ has a mask); radedge reads every element, so "
                 "fill or drop the masked ones first");
  }
  if (version == 3 && fields.contains("stream")) {
    const py::object stream = fields["stream"];
    if (!stream.is_none()) {
      const int64_t value = as_int64(stream, name, "stream");
      // CAI v3: 0 is ambiguous (legacy or per-thread default stream?) and therefore disallowed.
      if (value == 0) {
        refuse(name, "has stream 0 in its __cuda_array_interface__, which version 3 disallows (use 1 or 2)");
      }
      view.has_producer_stream = true;
      view.producer_stream = reinterpret_cast<cuda::StreamHandle>(static_cast<uintptr_t>(value));
    }
  }
  view.owner = py::reinterpret_borrow<py::object>(obj);
  return view;
}

// Metadata of a DLPack tensor, without taking it over.
DeviceView view_from_dltensor(const DLTensor& tensor, const char* name, const char* protocol) {
  check_dlpack_device_type(tensor.device.device_type, name, "a DLPack tensor");
  DeviceView view;
  view.name = name;
  view.protocol = protocol;
  if (tensor.ndim < 0 || tensor.ndim > kMaxDimensions) {
    refuse(name, "is a DLPack tensor with " + std::to_string(tensor.ndim) + " dimensions; radedge reads 0 to " +
                     std::to_string(kMaxDimensions));
  }
  view.dtype = tensor.dtype;
  if (!cuda::is_supported(view.dtype)) {
    refuse(name, "has element type " + cuda::dtype_name(view.dtype) +
                     "; radedge arrays hold bool, int8-64, uint8-64, float16, float32 or float64");
  }
  if (tensor.ndim > 0 && tensor.shape == nullptr) refuse(name, "is a DLPack tensor without a shape");
  view.shape.assign(tensor.shape, tensor.shape + tensor.ndim);
  int64_t count = 0;
  try {
    count = cuda::element_count(view.shape, view.itemsize());
  } catch (const std::invalid_argument& error) {
    refuse(name, "has shape " + cuda::describe_shape(view.shape) + ": " + error.what());
  }
  if (tensor.strides == nullptr) {
    view.strides = cuda::c_strides(view.shape, view.itemsize());
  } else {
    const int64_t item = static_cast<int64_t>(view.itemsize());
    for (int32_t i = 0; i < tensor.ndim; ++i) {
      int64_t bytes = 0;
      if (__builtin_mul_overflow(tensor.strides[i], item, &bytes)) refuse(name, "has a DLPack stride out of range");
      view.strides.push_back(bytes);
    }
  }
  if (tensor.data == nullptr && count > 0) refuse(name, "is a DLPack tensor with a null data pointer");
  view.data = static_cast<char*>(tensor.data) + tensor.byte_offset;
  // Managed memory is reachable from every device; prepare_device_views places it on the stream's.
  view.device = tensor.device.device_type == dlpack::kDLCUDAManaged ? -1 : tensor.device.device_id;
  return view;
}

// Saves and restores the Python error state around a capsule destructor, which may run while an
// exception is being raised.
class PreserveError {
 public:
  PreserveError() { PyErr_Fetch(&type_, &value_, &traceback_); }
  ~PreserveError() { PyErr_Restore(type_, value_, traceback_); }
  PreserveError(const PreserveError&) = delete;
  PreserveError& operator=(const PreserveError&) = delete;

 private:
  PyObject* type_ = nullptr;
  PyObject* value_ = nullptr;
  PyObject* traceback_ = nullptr;
};

template <typename Managed>
void release_consumed(PyObject* owner) {
  PreserveError preserve;
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(owner, kOwnerCapsuleName));
  if (managed == nullptr) {
    PyErr_Clear();
    return;
  }
  // DLPack: the consumer calls the deleter exactly once, when it no longer uses the memory.
  if (managed->deleter) managed->deleter(managed);
}

// Takes the tensor of `capsule` over: the returned owner calls its deleter when it dies.
template <typename Managed>
py::object consume(py::handle capsule, Managed* managed, const char* used_name) {
  PyObject* owner = PyCapsule_New(managed, kOwnerCapsuleName, release_consumed<Managed>);
  if (owner == nullptr) throw py::error_already_set();
  py::object held = py::reinterpret_steal<py::object>(owner);
  // Renaming tells the exporter's capsule destructor that the deleter is no longer its job.
  if (PyCapsule_SetName(capsule.ptr(), used_name) != 0) {
    PyCapsule_SetDestructor(owner, nullptr);  // the tensor stays the exporter's to release
    throw py::error_already_set();
  }
  return held;
}

DeviceView view_from_capsule(py::handle capsule, const char* name, const DeviceViewRequirements& required) {
  const char* capsule_name = PyCapsule_GetName(capsule.ptr());
  if (capsule_name == nullptr) {
    PyErr_Clear();
    refuse(name, "is a capsule without a name, not a DLPack tensor");
  }
  const std::string label(capsule_name);
  if (label == dlpack::kUsedCapsuleName || label == dlpack::kUsedVersionedCapsuleName) {
    refuse(name, "is a DLPack capsule that was already consumed; a capsule can be used once: call the array's "
                 "__dlpack__() again, or pass the array itself");
  }
  if (label == dlpack::kCapsuleName) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), dlpack::kCapsuleName));
    if (managed == nullptr) throw py::error_already_set();
    DeviceView view = view_from_dltensor(managed->dl_tensor, name, "DLPack 0.x capsule");
    check_requirements(view, required);
    view.owner = consume(capsule, managed, dlpack::kUsedCapsuleName);
    return view;
  }
  if (label == dlpack::kVersionedCapsuleName) {
    auto* managed =
        static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule.ptr(), dlpack::kVersionedCapsuleName));
    if (managed == nullptr) throw py::error_already_set();
    if (managed->version.major != dlpack::kMajorVersion) {
      refuse(name, "is a DLPack " + std::to_string(managed->version.major) + "." +
                       std::to_string(managed->version.minor) + " tensor; radedge reads DLPack 1.x");
    }
    DeviceView view = view_from_dltensor(managed->dl_tensor, name, "DLPack 1.x");
    view.readonly = (managed->flags & dlpack::kFlagReadOnly) != 0;
    if (required.writable && (managed->flags & dlpack::kFlagIsCopied) != 0) {
      refuse(name, "was exported as a copy (DLPack IS_COPIED), so what the op writes would be lost; pass an array "
                   "that the exporter can share without copying");
    }
    check_requirements(view, required);
    view.owner = consume(capsule, managed, dlpack::kUsedVersionedCapsuleName);
    return view;
  }
  refuse(name, "is a capsule named '" + label + "', not a DLPack tensor");
}

// Asks the exporter for a DLPack capsule, ordered before `stream`.
py::object export_dlpack(py::handle obj, const char* name, py::object stream_value) {
  const py::object method = obj.attr("__dlpack__");
  try {
    try {
      return method(py::arg("stream") = stream_value,
                    py::arg("max_version") = py::make_tuple(dlpack::kMajorVersion, dlpack::kMinorVersion));
    } catch (py::error_already_set& error) {
      // Exporters older than DLPack 1.0 do not take max_version.
      if (!error.matches(PyExc_TypeError)) throw;
    }
    return method(py::arg("stream") = stream_value);
  } catch (py::error_already_set& error) {
    if (error.matches(PyExc_BufferError) || error.matches(PyExc_TypeError) || error.matches(PyExc_ValueError)) {
      refuse(name, "(" + type_name(obj) + ") could not be exported through DLPack: " + error.what());
    }
    throw;
  }
}

// What a DLPack capsule exported by radedge points to: the tensor description, the shape and
// strides it points into, and a copy of the array, which shares (and so keeps) its memory.
template <typename Managed>
struct Exported {
  Managed managed{};
  cuda::DeviceArray array;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // elements
};

// The DLPack deleter: may run on any thread, with or without the GIL (the array's memory owner
// takes the GIL itself when it is a Python object).
template <typename Managed>
void delete_exported(Managed* self) {
  delete static_cast<Exported<Managed>*>(self->manager_ctx);
}

template <typename Managed>
const char* unused_capsule_name();
template <>
const char* unused_capsule_name<DLManagedTensor>() {
  return dlpack::kCapsuleName;
}
template <>
const char* unused_capsule_name<DLManagedTensorVersioned>() {
  return dlpack::kVersionedCapsuleName;
}

// Python specification for DLPack: a capsule that dies unconsumed (still named "dltensor...")
// releases its tensor; once a consumer renamed it, releasing is the consumer's job.
template <typename Managed>
void exported_capsule_destructor(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, unused_capsule_name<Managed>())) return;
  PreserveError preserve;
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, unused_capsule_name<Managed>()));
  if (managed != nullptr) managed->deleter(managed);
}

template <typename Managed>
py::object make_capsule(const cuda::DeviceArray& array, uint64_t flags) {
  auto exported = std::make_unique<Exported<Managed>>();
  exported->array = array;
  exported->shape = array.shape();
  const int64_t item = static_cast<int64_t>(array.item_bytes());
  for (size_t i = 0; i < array.strides().size(); ++i) {
    if (array.strides()[i] % item != 0) {
      throw py::buffer_error("DLPack counts strides in elements, and this array's byte stride " +
                             std::to_string(array.strides()[i]) + " is not a multiple of its " +
                             std::to_string(item) + "-byte elements");
    }
    exported->strides.push_back(array.strides()[i] / item);
  }
  DLTensor& tensor = exported->managed.dl_tensor;
  tensor.data = array.data();
  tensor.device = DLDevice{dlpack::kDLCUDA, array.device()};
  tensor.ndim = static_cast<int32_t>(exported->shape.size());
  tensor.dtype = array.dtype();
  tensor.shape = exported->shape.data();
  tensor.strides = exported->strides.data();
  tensor.byte_offset = 0;
  exported->managed.manager_ctx = exported.get();
  exported->managed.deleter = delete_exported<Managed>;
  if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) {
    exported->managed.version = DLPackVersion{dlpack::kMajorVersion, dlpack::kMinorVersion};
    exported->managed.flags = flags;
  }
  PyObject* capsule = PyCapsule_New(&exported->managed, unused_capsule_name<Managed>(),
                                    exported_capsule_destructor<Managed>);
  if (capsule == nullptr) throw py::error_already_set();
  exported.release();  // the capsule owns it now
  return py::reinterpret_steal<py::object>(capsule);
}

}  // namespace

py::object to_dlpack_capsule(const cuda::DeviceArray& array, bool versioned) {
  if (versioned) return make_capsule<DLManagedTensorVersioned>(array, array.readonly() ? dlpack::kFlagReadOnly : 0);
  if (array.readonly()) {
    throw py::buffer_error("this device array is read-only, which only DLPack 1.0 and later can signal: ask for "
                           "it with max_version=(1, 0) or later");
  }
  return make_capsule<DLManagedTensor>(array, 0);
}

int64_t DeviceView::element_stride(size_t axis) const {
  if (shape[axis] > 1) return strides[axis] / static_cast<int64_t>(itemsize());
  int64_t stride = 1;
  for (size_t i = axis + 1; i < shape.size(); ++i) stride *= shape[i] > 0 ? shape[i] : 1;
  return stride;
}

std::string DeviceView::describe() const {
  return cuda::dtype_name(dtype) + " " + cuda::describe_shape(shape) + " CUDA array (" + protocol + ")";
}

DeviceView as_device_view(py::handle obj, const char* name, const DeviceViewRequirements& required,
                          const cuda::Stream& stream) {
  if (obj.is_none()) refuse(name, "must be a CUDA device array; got None");
  if (PyCapsule_CheckExact(obj.ptr())) return view_from_capsule(obj, name, required);

  if (py::hasattr(obj, "__dlpack__") && py::hasattr(obj, "__dlpack_device__")) {
    const py::tuple device = py::tuple(obj.attr("__dlpack_device__")());
    if (device.size() != 2) refuse(name, "has a __dlpack_device__() that is not a (device_type, device_id) pair");
    // device_type is often an IntEnum; int() reads either.
    const int32_t type = py::int_(device[0]).cast<int32_t>();
    const int32_t id = py::int_(device[1]).cast<int32_t>();
    check_dlpack_device_type(type, name, "a " + type_name(obj));
    const std::string op = std::string("DLPack import of ") + name;
    if (type == dlpack::kDLCUDA) {
      const int stream_device = stream.device() >= 0 ? stream.device() : cuda::runtime::current_device(op.c_str());
      if (id != stream_device) {
        refuse(name, "is on CUDA device " + std::to_string(id) + " but the op runs on device " +
                         std::to_string(stream_device) + ": move it, or run on a stream of device " +
                         std::to_string(id));
      }
    }
    // -1 asks the exporter for no ordering: inside a graph capture the order is set at launch.
    const int64_t stream_value =
        stream.capturing(op.c_str()) ? -1 : cuda::stream_protocol_value(stream.handle());
    const py::object capsule = export_dlpack(obj, name, py::int_(stream_value));
    if (!PyCapsule_CheckExact(capsule.ptr())) {
      refuse(name, "(" + type_name(obj) + ") returned a " + type_name(capsule) + " from __dlpack__, not a capsule");
    }
    return view_from_capsule(capsule, name, required);
  }

  if (py::hasattr(obj, "__cuda_array_interface__")) {
    DeviceView view = view_from_cai(obj, name);
    check_requirements(view, required);
    return view;
  }

  if (py::hasattr(obj, "__array_interface__") || PyObject_CheckBuffer(obj.ptr())) {
    refuse(name, "must be a CUDA device array; got a " + type_name(obj) + ", a host array: " + kUploadHint);
  }
  refuse(name, "must be a CUDA device array (an object with __cuda_array_interface__ or __dlpack__: a "
               "radedge.cuda.DeviceArray, a torch CUDA tensor, a CuPy array, a pycuda GPUArray); got a " +
                   type_name(obj));
}

DeviceView as_device_view(py::handle obj, const char* name, bool writable) {
  DeviceViewRequirements required;
  required.writable = writable;
  return as_device_view(obj, name, required, cuda::Stream::legacy_default());
}

int prepare_device_views(const std::vector<DeviceView*>& views, const cuda::Stream& stream, const char* op) {
  const int device = stream.device() >= 0 ? stream.device() : cuda::runtime::current_device(op);
  bool ordering = false;
  for (DeviceView* view : views) {
    // CAI arrays and DLPack managed memory come without a device; the pointer tells it.
    if (view->device < 0 && view->data != nullptr) {
      const cuda::PointerInfo info = cuda::runtime::pointer_info(view->data, op);
      if (info.kind == cuda::PointerInfo::Kind::kHost || info.kind == cuda::PointerInfo::Kind::kUnregistered) {
        refuse(view->name, "points to host memory (address " + hex(view->data) + " from its " + view->protocol +
                               ") where the op needs CUDA device memory: " + kUploadHint);
      }
      view->device = info.kind == cuda::PointerInfo::Kind::kManaged ? device : info.device;
    }
    // Empty arrays and managed memory are usable from the stream's device.
    if (view->device < 0) view->device = device;
    if (view->device != device) {
      refuse(view->name, "is on CUDA device " + std::to_string(view->device) + " but the op runs on device " +
                             std::to_string(device) + ": move it, or run on a stream of device " +
                             std::to_string(view->device));
    }
    ordering = ordering || (view->has_producer_stream && !cuda::same_stream(view->producer_stream, stream.handle()));
  }
  if (ordering && !stream.capturing(op)) {
    for (const DeviceView* view : views) {
      if (view->has_producer_stream && !cuda::same_stream(view->producer_stream, stream.handle())) {
        stream.wait(cuda::Stream::borrow(view->producer_stream, view->device), op);
      }
    }
  }
  return device;
}

std::shared_ptr<cuda::Stream> stream_argument(py::handle obj, const char* op) {
  if (obj.is_none()) return std::make_shared<cuda::Stream>(cuda::Stream::legacy_default());
  // radedge.cuda.Stream wraps the native stream as `_native`.
  const py::object native =
      py::hasattr(obj, "_native") ? py::object(obj.attr("_native")) : py::reinterpret_borrow<py::object>(obj);
  try {
    return native.cast<std::shared_ptr<cuda::Stream>>();
  } catch (const py::cast_error&) {
    throw std::invalid_argument(std::string(op) + ": stream must be None (the legacy default stream) or a "
                                "radedge.cuda.Stream; got a " + type_name(obj) +
                                ". Wrap torch, CuPy or pycuda streams with radedge.cuda.as_stream(stream)");
  }
}

void require_aligned(const DeviceView& view, size_t alignment) {
  if (reinterpret_cast<uintptr_t>(view.data) % alignment != 0) {
    refuse(view.name, "must be " + std::to_string(alignment) + "-byte aligned; got " + view.describe() + " at " +
                          hex(view.data) + " (allocations are; a view at an odd offset is not)");
  }
}

namespace {

// [first, last) byte addresses an array's elements occupy; empty for an array without elements.
struct ByteSpan {
  uintptr_t first = 0, last = 0;
};

ByteSpan byte_span(const DeviceView& view) {
  for (const int64_t extent : view.shape) {
    if (extent == 0) return {};
  }
  int64_t low = 0, high = 0;
  for (size_t i = 0; i < view.shape.size(); ++i) {
    const int64_t reach = (view.shape[i] - 1) * view.strides[i];
    (reach < 0 ? low : high) += reach;
  }
  const auto base = reinterpret_cast<uintptr_t>(view.data);
  return ByteSpan{base + static_cast<uintptr_t>(low),
                  base + static_cast<uintptr_t>(high) + static_cast<uintptr_t>(view.itemsize())};
}

bool overlap(const ByteSpan& a, const ByteSpan& b) {
  return a.first < a.last && b.first < b.last && a.first < b.last && b.first < a.last;
}

}  // namespace

void refuse_overlaps(const std::vector<const DeviceView*>& written, const std::vector<const DeviceView*>& read,
                     const char* op) {
  for (size_t i = 0; i < written.size(); ++i) {
    const ByteSpan span = byte_span(*written[i]);
    const auto check = [&](const DeviceView* other) {
      if (overlap(span, byte_span(*other))) {
        refuse(written[i]->name, std::string("overlaps ") + other->name + " in device memory; " + op +
                                     " writes " + written[i]->name + ", so pass it a buffer of its own");
      }
    };
    for (size_t j = i + 1; j < written.size(); ++j) check(written[j]);
    for (const DeviceView* input : read) check(input);
  }
}

void require_cuda(const char* op) {
  std::string why;
  if (cuda_device_count(&why) > 0) return;
  throw CudaError(std::string(op) + " (CUDA): no usable CUDA device: " + why +
                  ". radedge's CPU ops still run; for CUDA check the NVIDIA driver and CUDA_VISIBLE_DEVICES");
}

std::shared_ptr<const void> hold_python_object(py::object obj) {
  auto* held = new py::object(std::move(obj));
  return std::shared_ptr<const void>(held, [](const void* pointer) {
    auto* object = static_cast<py::object*>(const_cast<void*>(pointer));
    if (!Py_IsInitialized()) {
      // The interpreter is gone, and its objects with it: drop the reference without touching it.
      object->release();
      delete object;
      return;
    }
    py::gil_scoped_acquire gil;
    delete object;
  });
}

}  // namespace radedge
