// Exceptions the native ops throw; the binding maps them onto Python exceptions.
//   std::invalid_argument -> ValueError (bad arguments, from the shared check_* functions)
//   radedge::CudaError    -> radedge._kernels.CudaError (a RuntimeError), naming the op,
//                            the step and the CUDA error; also raised by CUDA entry points
//                            in a build without CUDA or on a machine without a GPU.
#pragma once

#include <stdexcept>
#include <string>

namespace radedge {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace radedge
