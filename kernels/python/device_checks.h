// Checks the zero-copy op bindings make of their CUDA array arguments beyond what one array's
// requirements say (device_array.h): the shapes the op expects, element alignment, and outputs
// that overlap another argument. All read metadata only, so they run before CUDA is touched.
//
// Why alignment: __cuda_array_interface__ allows any address, and a kernel that loads a float32
// from an address that is not a multiple of 4 faults with cudaErrorMisalignedAddress, which
// poisons the whole CUDA context (every later call in the process fails). Why overlap: an op
// writes its outputs from many threads while it reads its inputs; two arguments sharing bytes
// give results that depend on the thread schedule.
#pragma once

#include <cstdint>
#include <deque>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_array.h"

namespace radedge::binding {

// The CUDA array arguments of one call. DeviceView::name is a plain pointer, so the names live
// here, beside the views, at addresses that stay put while arguments are added (a deque never
// moves its elements on push_back).
class DeviceArgs {
 public:
  explicit DeviceArgs(const cuda::Stream& stream) : stream_(stream) {}
  DeviceArgs(const DeviceArgs&) = delete;
  DeviceArgs& operator=(const DeviceArgs&) = delete;

  // Step 1 of device_array.h for one argument; the reference stays valid for this object's life.
  DeviceView& add(py::handle obj, std::string name, const DeviceViewRequirements& required) {
    names_.push_back(std::move(name));
    views_.push_back(as_device_view(obj, names_.back().c_str(), required, stream_));
    return views_.back();
  }

  std::vector<DeviceView*> all() {
    std::vector<DeviceView*> views;
    for (DeviceView& view : views_) views.push_back(&view);
    return views;
  }

 private:
  const cuda::Stream& stream_;
  std::deque<std::string> names_;
  std::deque<DeviceView> views_;
};

inline std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream text;
  text << "(";
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? ", " : "") << shape[i];
  text << (shape.size() == 1 ? ",)" : ")");
  return text.str();
}

// Throws unless `view` (whose rank its requirements fixed) has exactly `expected` shape.
inline void require_shape(const DeviceView& view, const std::vector<int64_t>& expected, const std::string& why) {
  if (view.shape != expected) {
    throw std::invalid_argument(std::string(view.name) + " must have shape " + shape_text(expected) + " (" + why +
                                "); got " + view.describe());
  }
}

// Throws unless the view's address is a multiple of `alignment` bytes (default: its element size).
inline void require_aligned(const DeviceView& view, size_t alignment = 0) {
  if (alignment == 0) alignment = view.itemsize();
  if (reinterpret_cast<uintptr_t>(view.data) % alignment != 0) {
    std::ostringstream text;
    text << view.name << " starts at address 0x" << std::hex << reinterpret_cast<uintptr_t>(view.data) << std::dec
         << ", which is not a multiple of the " << alignment << " bytes the op needs (" << view.describe()
         << "). Pass an array that starts on such a boundary (cudaMalloc, torch and CuPy allocations do; an "
            "offset view may not)";
    throw std::invalid_argument(text.str());
  }
}

// The bytes [first, last) that `view` spans; empty (first == last) for an empty array.
struct ByteSpan {
  uintptr_t first = 0, last = 0;
};

inline ByteSpan byte_span(const DeviceView& view) {
  if (view.size() == 0) return {};
  int64_t low = 0, high = static_cast<int64_t>(view.itemsize());
  for (size_t i = 0; i < view.shape.size(); ++i) {
    const int64_t reach = view.strides[i] * (view.shape[i] - 1);
    (reach < 0 ? low : high) += reach;
  }
  const uintptr_t base = reinterpret_cast<uintptr_t>(view.data);
  return {base + static_cast<uintptr_t>(low), base + static_cast<uintptr_t>(high)};
}

// Throws when an output shares a byte with any other argument (outputs included).
inline void refuse_overlaps(const std::vector<const DeviceView*>& outputs,
                            const std::vector<const DeviceView*>& arguments) {
  for (const DeviceView* output : outputs) {
    const ByteSpan written = byte_span(*output);
    if (written.first == written.last) continue;
    for (const DeviceView* other : arguments) {
      if (other == output) continue;
      const ByteSpan span = byte_span(*other);
      if (span.first < written.last && written.first < span.last) {
        throw std::invalid_argument(std::string(output->name) + " overlaps " + other->name +
                                    " in device memory; the op writes " + output->name +
                                    " while it reads or writes " + other->name +
                                    ", so give each output memory of its own");
      }
    }
  }
}

}  // namespace radedge::binding
