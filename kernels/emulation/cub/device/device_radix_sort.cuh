// CPU emulation of cub::DeviceRadixSort::SortKeys, for kernels/cuda under the emulator (see
// cuda_runtime.h). Keys are compared on bits [begin_bit, end_bit) only and the sort is stable,
// as a radix sort is.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_runtime.h"

namespace cub {

struct DeviceRadixSort {
  template <typename Key>
  static cudaError_t SortKeys(void* temp_storage, size_t& temp_storage_bytes, const Key* keys_in, Key* keys_out,
                              int num_items, int begin_bit = 0, int end_bit = sizeof(Key) * 8,
                              cudaStream_t stream = nullptr) {
    static_assert(std::is_unsigned<Key>::value, "the emulated radix sort takes unsigned keys");
    // Ask for some scratch, so that a caller who forgets to provide it is caught.
    const size_t needed = 64 + sizeof(Key) * static_cast<size_t>(num_items > 0 ? num_items : 0);
    if (temp_storage == nullptr) {
      temp_storage_bytes = needed;
      return cudaSuccess;
    }
    if (temp_storage_bytes < needed || num_items < 0 || begin_bit < 0 || end_bit > static_cast<int>(sizeof(Key) * 8) ||
        begin_bit > end_bit) {
      return cudaErrorInvalidValue;
    }
    if (num_items == 0) return cudaSuccess;
    Key* scratch = static_cast<Key*>(temp_storage);
    return radedge_emulation::enqueue_host_work(stream, "cub::DeviceRadixSort::SortKeys", [=] {
      std::memcpy(scratch, keys_in, sizeof(Key) * static_cast<size_t>(num_items));
      const int bits = end_bit - begin_bit;
      const Key mask = bits >= static_cast<int>(sizeof(Key) * 8) ? ~Key(0) : static_cast<Key>((Key(1) << bits) - 1);
      std::stable_sort(scratch, scratch + num_items,
                       [=](Key a, Key b) { return ((a >> begin_bit) & mask) < ((b >> begin_bit) & mask); });
      std::memcpy(keys_out, scratch, sizeof(Key) * static_cast<size_t>(num_items));
    });
  }
};

}  // namespace cub
