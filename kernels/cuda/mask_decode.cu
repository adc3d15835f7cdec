// CUDA implementation of the mask decode op (see radedge/mask_decode.h).
//
// Kernels, in stream order:
//   1. init_kernel         empties the label tallies and zeroes the counters;
//   2. axis_kernel (x2)    the output -> logit-cell table of the columns and of the rows
//                          (detail::mask_axis_sample, the CPU's function);
//   3. point_code_kernel   one byte per logit for the cell rule (detail::point_code), and
//                          the count of NaN / infinite logits;
//   4. decode_kernel       one thread per output pixel: the cell's label when its four
//                          corners agree, else the interpolated label (the CPU's rule and
//                          arithmetic); tallies in shared memory, added to the global ones
//                          with atomics once per block;
// and, for run-length encoding (a run starts at every pixel that differs from the one
// before it in row-major order):
//   5. row_run_count_kernel  runs starting in each output row;
//   6. row_offsets_kernel    one block scans those counts into each row's first run index
//                            and stores the total;
//   7. run_starts_kernel     each row writes the pixel index of its run starts (the first
//                            capacity + 1 of the whole mask), ranked by a block-wide scan;
//   8. runs_kernel           (value, length) of the stored runs from consecutive starts.
// Everything lives in caller-owned memory and the workspace, so the sequence can be
// captured in a CUDA graph.
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/cuda_util.h"
#include "radedge/mask_decode.h"

namespace radedge {
namespace {

constexpr const char* kOp = "mask_decode";

void check_cuda(cudaError_t status, const char* step) { cuda::check(status, kOp, step); }



// Byte offsets of the parts of the workspace.
struct WorkspaceLayout {
  size_t column_cell, column_fraction, row_cell, row_fraction, codes, row_runs, run_starts;
  size_t total;
};

// capacity: the run capacity already limited to the mask's pixel count (0: no encoding).
WorkspaceLayout workspace_layout(int64_t logits_height, int64_t logits_width, int64_t mask_height,
                                 int64_t mask_width, int64_t capacity) {
  WorkspaceLayout layout{};
  size_t at = 0;
  const auto take = [&at](size_t bytes) {
    const size_t offset = at;
    at += cuda::align_workspace(bytes);
    return offset;
  };
  layout.column_cell = take(sizeof(int32_t) * static_cast<size_t>(mask_width));
  layout.column_fraction = take(sizeof(float) * static_cast<size_t>(mask_width));
  layout.row_cell = take(sizeof(int32_t) * static_cast<size_t>(mask_height));
  layout.row_fraction = take(sizeof(float) * static_cast<size_t>(mask_height));
  layout.codes = take(static_cast<size_t>(logits_height * logits_width));
  layout.row_runs = take(capacity > 0 ? sizeof(uint32_t) * static_cast<size_t>(mask_height) : 0);
  // One start more than the capacity: the length of the last stored run needs the next.
  layout.run_starts = take(capacity > 0 ? sizeof(uint32_t) * static_cast<size_t>(capacity + 1) : 0);
  layout.total = at;
  return layout;
}

int64_t effective_capacity(int64_t capacity, int64_t mask_height, int64_t mask_width) {
  // A mask never has more runs than pixels.
  return capacity < mask_height * mask_width ? capacity : mask_height * mask_width;
}

__global__ void init_kernel(LabelTally* tallies, int64_t label_count, MaskDecodeCounters* counters) {
  for (int64_t k = threadIdx.x; k < label_count; k += blockDim.x) tallies[k] = detail::empty_tally();
  if (threadIdx.x == 0) {
    counters->run_count = 0;
    counters->non_finite_logits = 0;
  }
}

__global__ void axis_kernel(detail::MaskAxis axis, int64_t output_size, int32_t* cell, float* fraction) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= output_size) return;
  float weight = 0.0f;
  cell[index] = detail::mask_axis_sample(axis, index, &weight);
  fraction[index] = weight;
}

template <typename T>
__global__ void point_code_kernel(const T* __restrict__ logits, int64_t plane, detail::MaskRule rule,
                                  uint8_t* __restrict__ codes, MaskDecodeCounters* counters) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < plane;
       index += stride) {
    unsigned long long non_finite = 0;
    for (int32_t c = 0; c < rule.channels; ++c) {
      non_finite += isfinite(detail::load_logit(logits + c * plane + index)) ? 0 : 1;
    }
    if (non_finite > 0) atomicAdd(&counters->non_finite_logits, non_finite);
    codes[index] = detail::point_code(logits, plane, index, rule);
  }
}

constexpr unsigned kDecodeBlockX = 32;
constexpr unsigned kDecodeBlockY = 8;

template <typename T>
__global__ void decode_kernel(const T* __restrict__ logits, int64_t logits_height, int64_t logits_width,
                              const uint8_t* __restrict__ codes, const int32_t* __restrict__ column_cell,
                              const float* __restrict__ column_fraction, const int32_t* __restrict__ row_cell,
                              const float* __restrict__ row_fraction, uint8_t* __restrict__ mask, int64_t height,
                              int64_t width, detail::MaskRule rule, int64_t label_count, LabelTally* tallies) {
  // label_count tallies of this block; launched with that much dynamic shared memory.
  extern __shared__ LabelTally block_tallies[];
  const int thread = static_cast<int>(threadIdx.y * blockDim.x + threadIdx.x);
  const int threads = static_cast<int>(blockDim.x * blockDim.y);
  for (int64_t k = thread; k < label_count; k += threads) block_tallies[k] = detail::empty_tally();
  __syncthreads();

  const int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t y = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (x < width && y < height) {
    const int64_t x0 = column_cell[x], y0 = row_cell[y];
    uint8_t label = 0;
    if (x0 >= 0 && y0 >= 0) {
      const int64_t x1 = x0 + 1 < logits_width ? x0 + 1 : logits_width - 1;
      const int64_t y1 = y0 + 1 < logits_height ? y0 + 1 : logits_height - 1;
      const uint8_t* top = codes + y0 * logits_width;
      const uint8_t* bottom = codes + y1 * logits_width;
      label = detail::cell_label(top[x0], top[x1], bottom[x0], bottom[x1]);
      if (label == detail::kMixedCell) {
        label = detail::interpolated_label(logits, logits_height * logits_width, logits_width, x0, x1, y0, y1,
                                           column_fraction[x], row_fraction[y], rule);
      }
    }
    mask[y * width + x] = label;
    if (label != 0) {
      LabelTally& t = block_tallies[label - 1];
      const auto ux = static_cast<unsigned long long>(x), uy = static_cast<unsigned long long>(y);
      atomicAdd(&t.pixel_count, 1ull);
      atomicAdd(&t.sum_x, ux);
      atomicAdd(&t.sum_y, uy);
      atomicMin(&t.min_x, ux);
      atomicMin(&t.min_y, uy);
      atomicMax(&t.max_x, ux);
      atomicMax(&t.max_y, uy);
    }
  }
  __syncthreads();

  for (int64_t k = thread; k < label_count; k += threads) {
    const LabelTally& t = block_tallies[k];
    if (t.pixel_count == 0) continue;
    LabelTally& total = tallies[k];
    atomicAdd(&total.pixel_count, t.pixel_count);
    atomicAdd(&total.sum_x, t.sum_x);
    atomicAdd(&total.sum_y, t.sum_y);
    atomicMin(&total.min_x, t.min_x);
    atomicMin(&total.min_y, t.min_y);
    atomicMax(&total.max_x, t.max_x);
    atomicMax(&total.max_y, t.max_y);
  }
}

constexpr int kRowThreads = 256;
constexpr int kScanThreads = 1024;

// Whether pixel `index` (row-major, > 0 or not) starts a run.
__device__ inline uint32_t starts_run(const uint8_t* mask, int64_t index) {
  return index == 0 || mask[index] != mask[index - 1] ? 1u : 0u;
}

// One block per output row.
__global__ void row_run_count_kernel(const uint8_t* __restrict__ mask, int64_t width, uint32_t* row_runs) {
  using Reduce = cub::BlockReduce<uint32_t, kRowThreads>;
  __shared__ typename Reduce::TempStorage storage;
  const int64_t row_start = static_cast<int64_t>(blockIdx.x) * width;
  uint32_t count = 0;
  for (int64_t x = threadIdx.x; x < width; x += kRowThreads) count += starts_run(mask, row_start + x);
  const uint32_t total = Reduce(storage).Sum(count);
  if (threadIdx.x == 0) row_runs[blockIdx.x] = total;
}

// One block: row_runs (runs starting in each row) -> the index of each row's first run;
// the total goes to counters->run_count. Fits uint32: a mask has fewer than 2^32 pixels.
__global__ void row_offsets_kernel(uint32_t* row_runs, int64_t height, MaskDecodeCounters* counters) {
  using Scan = cub::BlockScan<uint32_t, kScanThreads>;
  __shared__ typename Scan::TempStorage storage;
  uint32_t base = 0;
  for (int64_t first = 0; first < height; first += kScanThreads) {
    const int64_t y = first + threadIdx.x;
    const uint32_t count = y < height ? row_runs[y] : 0u;
    uint32_t offset = 0, chunk_total = 0;
    Scan(storage).ExclusiveSum(count, offset, chunk_total);
    if (y < height) row_runs[y] = base + offset;
    base += chunk_total;
    __syncthreads();  // before the next chunk reuses the scan's shared storage
  }
  if (threadIdx.x == 0) counters->run_count = base;
}

// One block per output row: pixel indices of the run starts with index <= capacity.
__global__ void run_starts_kernel(const uint8_t* __restrict__ mask, int64_t width,
                                  const uint32_t* __restrict__ row_offsets, int64_t capacity,
                                  uint32_t* __restrict__ starts) {
  using Scan = cub::BlockScan<uint32_t, kRowThreads>;
  __shared__ typename Scan::TempStorage storage;
  const int64_t row_start = static_cast<int64_t>(blockIdx.x) * width;
  int64_t base = row_offsets[blockIdx.x];
  for (int64_t first = 0; first < width; first += kRowThreads) {
    const int64_t x = first + threadIdx.x;
    const uint32_t flag = x < width ? starts_run(mask, row_start + x) : 0u;
    uint32_t rank = 0, chunk_total = 0;
    Scan(storage).ExclusiveSum(flag, rank, chunk_total);
    if (flag && base + rank <= capacity) starts[base + rank] = static_cast<uint32_t>(row_start + x);
    base += chunk_total;
    __syncthreads();  // before the next chunk reuses the scan's shared storage
  }
}

__global__ void runs_kernel(const uint8_t* __restrict__ mask, const uint32_t* __restrict__ starts, int64_t pixels,
                            int64_t capacity, const MaskDecodeCounters* counters, uint32_t* __restrict__ runs) {
  const int64_t total = static_cast<int64_t>(counters->run_count);
  const int64_t stored = total < capacity ? total : capacity;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < stored; r += stride) {
    // r + 1 <= capacity whenever r + 1 < total, so the next start was stored.
    const int64_t start = starts[r];
    const int64_t end = r + 1 < total ? static_cast<int64_t>(starts[r + 1]) : pixels;
    runs[2 * r] = mask[start];
    runs[2 * r + 1] = static_cast<uint32_t>(end - start);
  }
}

unsigned blocks_for(int64_t items, unsigned threads, int64_t most) {
  const int64_t blocks = (items + threads - 1) / threads;
  return static_cast<unsigned>(blocks < most ? (blocks > 0 ? blocks : 1) : most);
}

template <typename T>
void launch_logit_kernels(const T* image_logits, const LogitsView& logits, const detail::MaskRule& rule,
                          uint8_t* codes, const int32_t* column_cell, const float* column_fraction,
                          const int32_t* row_cell, const float* row_fraction, const MaskView& mask,
                          int64_t label_count, LabelTally* tallies, MaskDecodeCounters* counters,
                          cudaStream_t stream) {
  const int64_t plane = logits.height * logits.width;
  constexpr unsigned kThreads = 256;
  point_code_kernel<T><<<blocks_for(plane, kThreads, 4096), kThreads, 0, stream>>>(image_logits, plane, rule, codes,
                                                                                   counters);
  const dim3 block(kDecodeBlockX, kDecodeBlockY);
  // Both fit: the mask is at most 65535 on a side.
  const dim3 grid(static_cast<unsigned>((mask.width + block.x - 1) / block.x),
                  static_cast<unsigned>((mask.height + block.y - 1) / block.y));
  const size_t shared = sizeof(LabelTally) * static_cast<size_t>(label_count);
  decode_kernel<T><<<grid, block, shared, stream>>>(image_logits, logits.height, logits.width, codes, column_cell,
                                                    column_fraction, row_cell, row_fraction, mask.data, mask.height,
                                                    mask.width, rule, label_count, tallies);
}

size_t logit_bytes(LogitType type) { return type == LogitType::kFloat32 ? 4 : 2; }

}  // namespace

size_t mask_decode_cuda_workspace_bytes(int64_t logits_height, int64_t logits_width, int64_t mask_height,
                                        int64_t mask_width, int64_t run_capacity) {
  if (logits_height < 1 || logits_width < 1 || logits_height > kMaxMaskSide || logits_width > kMaxMaskSide ||
      mask_height < 1 || mask_width < 1 || mask_height > kMaxMaskSide || mask_width > kMaxMaskSide ||
      run_capacity < 0) {
    throw std::invalid_argument("mask_decode (CUDA): workspace size asked for logits " +
                                std::to_string(logits_height) + " x " + std::to_string(logits_width) + ", mask " +
                                std::to_string(mask_height) + " x " + std::to_string(mask_width) +
                                " and run capacity " + std::to_string(run_capacity) + "; sides must be 1 to " +
                                std::to_string(kMaxMaskSide) + " and the capacity >= 0");
  }
  return workspace_layout(logits_height, logits_width, mask_height, mask_width,
                          effective_capacity(run_capacity, mask_height, mask_width))
      .total;
}

void mask_decode_cuda(const LogitsView& logits, int64_t image, const MaskDecodeParams& params, const MaskView& mask,
                      const RunsView& runs, LabelTally* tallies, MaskDecodeCounters* counters, void* workspace,
                      size_t workspace_bytes, CUstream_st* stream) {
  check_mask_decode_args(logits, image, params, mask, runs);
  const int64_t label_count = mask_label_count(params.activation, logits.channels);
  if (tallies == nullptr || counters == nullptr) {
    throw std::invalid_argument("mask_decode (CUDA): tallies (" + std::to_string(label_count) +
                                " LabelTally) and counters (one MaskDecodeCounters) must be device pointers; got null");
  }
  const int64_t capacity = effective_capacity(runs.capacity, mask.height, mask.width);
  const WorkspaceLayout layout = workspace_layout(logits.height, logits.width, mask.height, mask.width, capacity);
  cuda::check_workspace("mask_decode", workspace, workspace_bytes, layout.total);
  char* base = static_cast<char*>(workspace);
  auto* column_cell = reinterpret_cast<int32_t*>(base + layout.column_cell);
  auto* column_fraction = reinterpret_cast<float*>(base + layout.column_fraction);
  auto* row_cell = reinterpret_cast<int32_t*>(base + layout.row_cell);
  auto* row_fraction = reinterpret_cast<float*>(base + layout.row_fraction);
  auto* codes = reinterpret_cast<uint8_t*>(base + layout.codes);
  auto* row_runs = reinterpret_cast<uint32_t*>(base + layout.row_runs);
  auto* run_starts = reinterpret_cast<uint32_t*>(base + layout.run_starts);

  init_kernel<<<1, 256, 0, stream>>>(tallies, label_count, counters);

  const detail::MaskAxis column_axis = detail::make_mask_axis(x_axis(params.geometry), logits.width, mask.width);
  const detail::MaskAxis row_axis = detail::make_mask_axis(y_axis(params.geometry), logits.height, mask.height);
  constexpr unsigned kAxisThreads = 128;
  axis_kernel<<<blocks_for(mask.width, kAxisThreads, 65535), kAxisThreads, 0, stream>>>(
      column_axis, mask.width, column_cell, column_fraction);
  axis_kernel<<<blocks_for(mask.height, kAxisThreads, 65535), kAxisThreads, 0, stream>>>(
      row_axis, mask.height, row_cell, row_fraction);

  const detail::MaskRule rule = detail::make_mask_rule(params, logits.channels);
  const int64_t image_offset = image * logits.channels * logits.height * logits.width;
  if (logits.type == LogitType::kFloat32) {
    launch_logit_kernels(static_cast<const float*>(logits.data) + image_offset, logits, rule, codes, column_cell,
                         column_fraction, row_cell, row_fraction, mask, label_count, tallies, counters, stream);
  } else {
    launch_logit_kernels(static_cast<const uint16_t*>(logits.data) + image_offset, logits, rule, codes, column_cell,
                         column_fraction, row_cell, row_fraction, mask, label_count, tallies, counters, stream);
  }

  if (capacity > 0) {
    const auto rows = static_cast<unsigned>(mask.height);
    row_run_count_kernel<<<rows, kRowThreads, 0, stream>>>(mask.data, mask.width, row_runs);
    row_offsets_kernel<<<1, kScanThreads, 0, stream>>>(row_runs, mask.height, counters);
    run_starts_kernel<<<rows, kRowThreads, 0, stream>>>(mask.data, mask.width, row_runs, capacity, run_starts);
    constexpr unsigned kThreads = 256;
    runs_kernel<<<blocks_for(capacity, kThreads, 4096), kThreads, 0, stream>>>(
        mask.data, run_starts, mask.height * mask.width, capacity, counters, runs.data);
  }
  check_cuda(cudaGetLastError(), "kernel launch");
}

MaskDecodeResult mask_decode_cuda_host(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                                       const MaskView& mask, const RunsView& runs) {
  check_mask_decode_args(logits, image, params, mask, runs);
  cuda::require_device(kOp);

  const int64_t label_count = mask_label_count(params.activation, logits.channels);
  const size_t image_bytes =
      static_cast<size_t>(logits.channels * logits.height * logits.width) * logit_bytes(logits.type);
  const size_t mask_bytes = static_cast<size_t>(mask.height * mask.width);
  const int64_t capacity = effective_capacity(runs.capacity, mask.height, mask.width);
  const size_t run_bytes = sizeof(uint32_t) * 2 * static_cast<size_t>(capacity);
  const size_t tally_bytes = sizeof(LabelTally) * static_cast<size_t>(label_count);
  const size_t workspace_bytes =
      mask_decode_cuda_workspace_bytes(logits.height, logits.width, mask.height, mask.width, runs.capacity);

  cuda::Stream stream(kOp);
  cuda::DeviceBuffer device_logits(image_bytes, kOp);
  cuda::DeviceBuffer device_mask(mask_bytes, kOp);
  cuda::DeviceBuffer device_runs(run_bytes, kOp);
  cuda::DeviceBuffer device_tallies(tally_bytes, kOp);
  cuda::DeviceBuffer device_counters(sizeof(MaskDecodeCounters), kOp);
  cuda::DeviceBuffer workspace(workspace_bytes, kOp);

  const char* image_data = static_cast<const char*>(logits.data) + static_cast<size_t>(image) * image_bytes;
  check_cuda(cudaMemcpyAsync(device_logits.get(), image_data, image_bytes, cudaMemcpyHostToDevice, stream.get()),
             "copying the logits to the device");

  LogitsView device_logits_view = logits;
  device_logits_view.data = device_logits.get();
  device_logits_view.batch = 1;
  MaskView device_mask_view = mask;
  device_mask_view.data = static_cast<uint8_t*>(device_mask.get());
  RunsView device_runs_view{static_cast<uint32_t*>(device_runs.get()), capacity};

  mask_decode_cuda(device_logits_view, 0, params, device_mask_view, device_runs_view,
                   static_cast<LabelTally*>(device_tallies.get()),
                   static_cast<MaskDecodeCounters*>(device_counters.get()), workspace.get(), workspace_bytes,
                   stream.get());

  // Staged on the host so that `mask` and `runs` are written only once everything has
  // succeeded.
  std::vector<uint8_t> staged_mask(mask_bytes);
  std::vector<uint32_t> staged_runs(2 * static_cast<size_t>(capacity));
  std::vector<LabelTally> staged_tallies(static_cast<size_t>(label_count));
  MaskDecodeCounters counters{};
  check_cuda(cudaMemcpyAsync(staged_mask.data(), device_mask.get(), mask_bytes, cudaMemcpyDeviceToHost, stream.get()),
             "copying the mask to the host");
  check_cuda(cudaMemcpyAsync(staged_runs.data(), device_runs.get(), run_bytes, cudaMemcpyDeviceToHost, stream.get()),
             "copying the runs to the host");
  check_cuda(cudaMemcpyAsync(staged_tallies.data(), device_tallies.get(), tally_bytes, cudaMemcpyDeviceToHost,
                             stream.get()),
             "copying the statistics to the host");
  check_cuda(cudaMemcpyAsync(&counters, device_counters.get(), sizeof counters, cudaMemcpyDeviceToHost, stream.get()),
             "copying the counters to the host");
  check_cuda(cudaStreamSynchronize(stream.get()), "running the mask decode kernels");

  if (counters.non_finite_logits > 0) {
    throw std::invalid_argument("mask_decode: logits of image " + std::to_string(image) + " hold " +
                                std::to_string(counters.non_finite_logits) +
                                " NaN or infinite values; the model or its input is broken, so no mask can be decoded");
  }
  std::memcpy(mask.data, staged_mask.data(), mask_bytes);
  if (capacity > 0) {
    const size_t stored = static_cast<size_t>(counters.run_count < static_cast<unsigned long long>(capacity)
                                                  ? counters.run_count
                                                  : static_cast<unsigned long long>(capacity));
    std::memcpy(runs.data, staged_runs.data(), sizeof(uint32_t) * 2 * stored);
  }
  MaskDecodeResult result;
  result.labels = mask_label_stats(staged_tallies.data(), label_count, params, mask);
  result.run_count = capacity > 0 ? static_cast<int64_t>(counters.run_count) : 0;
  return result;
}

}  // namespace radedge
