// What the native module can tell about CUDA devices without requiring one.
#pragma once

#include <string>

namespace radedge {

// Number of CUDA devices visible to this process; 0 with `why` set when the module was
// built without CUDA, no driver is installed, or the driver sees no device.
int cuda_device_count(std::string* why);

}  // namespace radedge
