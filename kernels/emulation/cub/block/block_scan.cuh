// CPU emulation of cub::BlockScan (ExclusiveSum), for kernels/cuda under the emulator (see
// cuda_runtime.h).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "cuda_runtime.h"

namespace cub {

template <typename T, int kBlockThreads>
class BlockScan {
 public:
  struct TempStorage {
    T values[kBlockThreads];
    T prefix[kBlockThreads];
    T total;
    uint64_t epoch;  // barrier epoch in which `prefix` was computed
  };

  explicit BlockScan(TempStorage& storage) : storage_(storage) {
    if (radedge_emulation::block_threads() != static_cast<unsigned int>(kBlockThreads)) {
      throw std::logic_error("cub::BlockScan used by a block whose size differs from its BLOCK_DIM_X");
    }
  }

  void ExclusiveSum(T input, T& output, T& block_aggregate) {
    const unsigned int thread = radedge_emulation::linear_thread();
    storage_.values[thread] = input;
    __syncthreads();
    // The first thread to resume after the barrier scans for all of them.
    const uint64_t epoch = radedge_emulation::barrier_epoch();
    if (storage_.epoch != epoch) {
      T running = T();
      for (int i = 0; i < kBlockThreads; ++i) {
        storage_.prefix[i] = running;
        running = running + storage_.values[i];
      }
      storage_.total = running;
      storage_.epoch = epoch;
    }
    output = storage_.prefix[thread];
    block_aggregate = storage_.total;
  }

  void ExclusiveSum(T input, T& output) {
    T aggregate;
    ExclusiveSum(input, output, aggregate);
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
