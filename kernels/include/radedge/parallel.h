// Splitting an op's work across CPU threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace radedge {

// Threads an op uses when the caller passes 0: RADEDGE_NUM_THREADS if set to a positive
// integer, else the hardware concurrency (at least 1).
int default_thread_count();

// Runs body(first, last) over [begin, end) split into at most `threads` contiguous chunks
// of at least `min_chunk` items; chunk 0 runs on the calling thread. threads <= 0 means
// default_thread_count().
template <typename Body>
void parallel_for(int64_t begin, int64_t end, int threads, int64_t min_chunk, Body&& body) {
  const int64_t total = end - begin;
  if (total <= 0) return;
  if (threads <= 0) threads = default_thread_count();
  const int64_t by_size = std::max<int64_t>(1, total / std::max<int64_t>(1, min_chunk));
  const int64_t chunks = std::min<int64_t>(threads, by_size);
  if (chunks <= 1) {
    body(begin, end);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(chunks - 1));
  const int64_t step = total / chunks, extra = total % chunks;
  int64_t first = begin;
  int64_t first_chunk_end = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t last = first + step + (c < extra ? 1 : 0);
    if (c == 0) {
      first_chunk_end = last;
    } else {
      workers.emplace_back([&body, first, last] { body(first, last); });
    }
    first = last;
  }
  body(begin, first_chunk_end);
  for (auto& w : workers) w.join();
}

}  // namespace radedge
