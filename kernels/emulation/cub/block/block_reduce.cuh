// CPU emulation of cub::BlockReduce (Sum), for kernels/cuda under the emulator (see cuda_runtime.h).
#pragma once

#include <stdexcept>

#include "cuda_runtime.h"

namespace cub {

template <typename T, int kBlockThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T values[kBlockThreads];
  };

  explicit BlockReduce(TempStorage& storage) : storage_(storage) {
    if (radedge_emulation::block_threads() != static_cast<unsigned int>(kBlockThreads)) {
      throw std::logic_error("cub::BlockReduce used by a block whose size differs from its BLOCK_DIM_X");
    }
  }

  // As in cub, only thread 0 receives the total; the others get an unspecified value (here a
  // poison value, so that code relying on it fails the tests).
  T Sum(T input) {
    const unsigned int thread = radedge_emulation::linear_thread();
    storage_.values[thread] = input;
    __syncthreads();
    if (thread != 0) return static_cast<T>(0x5eed5eed);
    T total = T();
    for (int i = 0; i < kBlockThreads; ++i) total = total + storage_.values[i];
    return total;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
