// The DLPack exchange structs, written from the DLPack specification (dlpack.h, versions 0.8 to
// 1.1: https://dmlc.github.io/dlpack/latest/c_api.html) so that radedge can hand device memory to
// torch / CuPy / JAX and take theirs without a copy.
//
// Only the ABI is declared: the struct layouts and the enum values that radedge reads or writes.
// Field order, widths and enum values must match the specification exactly; the static_asserts at
// the end check the sizes a 64-bit C compiler gives the specification's structs.
//
// What radedge supports:
//   - consuming: the unversioned `DLManagedTensor` (capsule "dltensor") and the versioned
//     `DLManagedTensorVersioned` of major version 1 (capsule "dltensor_versioned"), reading its
//     READ_ONLY and IS_COPIED flags;
//   - producing: both, the versioned one when the consumer passes max_version >= (1, 0).
// A capsule is renamed "used_dltensor" / "used_dltensor_versioned" when its tensor is taken over;
// from then on the consumer alone calls the deleter, exactly once, when it no longer needs the
// memory (specification: Python Specification for DLPack, "PyCapsule lifetime").
#pragma once

#include <cstdint>

namespace radedge::dlpack {

// Version that radedge produces in DLManagedTensorVersioned, and the major version it reads.
constexpr uint32_t kMajorVersion = 1;
constexpr uint32_t kMinorVersion = 1;

// Capsule names (Python specification for DLPack).
constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";
constexpr const char* kVersionedCapsuleName = "dltensor_versioned";
constexpr const char* kUsedVersionedCapsuleName = "used_dltensor_versioned";

// DLDeviceType values that radedge names in messages or accepts.
enum DeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,  // page-locked host memory (cudaMallocHost)
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,  // cudaMallocManaged: usable by kernels like device memory
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17,
};

// DLDataTypeCode values.
enum DataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

// DLManagedTensorVersioned::flags bits.
constexpr uint64_t kFlagReadOnly = 1ULL << 0;
constexpr uint64_t kFlagIsCopied = 1ULL << 1;
constexpr uint64_t kFlagIsSubbyteTypePadded = 1ULL << 2;

}  // namespace radedge::dlpack

extern "C" {

// The specification declares device_type as the enum DLDeviceType, which C compilers give the
// size of an int; int32_t names that size explicitly.
struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};

struct DLDataType {
  uint8_t code;   // DataTypeCode
  uint8_t bits;   // bits per lane: 8, 16, 32, 64
  uint16_t lanes; // 1 for scalar elements
};

struct DLTensor {
  void* data;           // device pointer, not necessarily the first element: add byte_offset
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;       // [ndim]
  int64_t* strides;     // [ndim], in elements (not bytes); NULL means compact row-major
  uint64_t byte_offset; // from data to the first element
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);  // may be NULL; deletes `self` too
};

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);  // may be NULL; deletes `self` too
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // extern "C"

static_assert(sizeof(void*) == 8, "the DLPack layouts below are checked for 64-bit targets");
static_assert(sizeof(DLDevice) == 8 && sizeof(DLDataType) == 4, "DLDevice / DLDataType layout");
static_assert(sizeof(DLTensor) == 48, "DLTensor layout");
static_assert(sizeof(DLManagedTensor) == 64, "DLManagedTensor layout");
static_assert(sizeof(DLManagedTensorVersioned) == 80, "DLManagedTensorVersioned layout");
