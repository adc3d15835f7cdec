// CUDA implementation of the heatmap peaks op (see radedge/heatmap_peaks.h).
//
// 1. cudaMemsetAsync clears one candidate counter per (image, channel) map.
// 2. mark_candidates_kernel: one thread per content cell applies the threshold and the
//    local-maximum rule (the same detail::is_local_maximum as the CPU) and appends the
//    cell to its map's list with an atomic counter. The list order is not deterministic;
//    the selection below does not depend on it. Each list has room for every content cell
//    of its map, so it cannot overflow.
// 3. select_peaks_kernel: one block per map ranks the list in shared memory, in rounds:
//    the best K so far sit in entries [0, K), the next candidates fill [K, size), and a
//    bitonic sort of size (a power of two, at most kPeakSortCapacity = 2 * kMaxPeaks)
//    entries under the op's total order brings the new best K to the front. The winners
//    are then refined and mapped with the CPU's own functions, in float64.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/cuda_util.h"
#include "radedge/heatmap_peaks.h"

namespace radedge {
namespace {

constexpr const char* kOp = "heatmap_peaks";

void check_cuda(cudaError_t status, const char* step) { cuda::check(status, kOp, step); }



struct CandidateEntry {
  float value;
  uint32_t index;  // y * width + x in the whole grid
};

// Byte offsets inside the workspace; `capacity` candidates per map.
struct WorkspaceLayout {
  size_t counts, candidates, total;
  int64_t capacity;
};

WorkspaceLayout workspace_layout(const HeatmapsView& heatmaps, const ContentCells& cells) {
  WorkspaceLayout layout{};
  const int64_t maps = heatmaps.batch * heatmaps.channels;
  layout.capacity = cells.width() > 0 && cells.height() > 0 ? cells.width() * cells.height() : 0;
  layout.counts = 0;
  layout.candidates = cuda::align_workspace(sizeof(uint32_t) * static_cast<size_t>(maps));
  layout.total = layout.candidates + cuda::align_workspace(sizeof(CandidateEntry) * static_cast<size_t>(maps * layout.capacity));
  return layout;
}

__device__ inline float load_value(const float* values, int64_t i) { return __ldg(values + i); }
__device__ inline float load_value(const uint16_t* values, int64_t i) {
  return __half2float(__ushort_as_half(__ldg(values + i)));
}

template <typename T>
struct MapLoad {
  const T* values;
  int64_t width;
  __device__ float operator()(int64_t y, int64_t x) const { return load_value(values, y * width + x); }
};

template <typename T>
__global__ void mark_candidates_kernel(const T* __restrict__ heatmaps, int64_t height, int64_t width, int64_t maps,
                                       int64_t channels, int64_t radius, detail::PeakConstants k,
                                       uint32_t* __restrict__ counts, CandidateEntry* __restrict__ candidates,
                                       int64_t capacity) {
  const ContentCells cells = k.cells;
  const int64_t cells_wide = cells.width();
  const int64_t total = maps * capacity;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t map = i / capacity, cell = i % capacity;
    const int64_t y = cells.first_y + cell / cells_wide, x = cells.first_x + cell % cells_wide;
    const MapLoad<T> load{heatmaps + map * height * width, width};
    const float value = load(y, x);
    const int64_t channel = map % channels;
    if (!(value >= k.raw_threshold[k.threshold_count == 1 ? 0 : channel])) continue;
    if (!detail::is_local_maximum(load, y, x, value, radius, cells)) continue;
    const uint32_t slot = atomicAdd(counts + map, 1u);
    candidates[map * capacity + slot] = CandidateEntry{value, static_cast<uint32_t>(y * width + x)};
  }
}

constexpr unsigned kSelectThreads = 512;

// Sorts keys/indices [0, size) into rank order (detail::ranks_before) with every thread of
// the block; size is a power of two. Ends synchronised.
__device__ void bitonic_sort(float* keys, uint32_t* indices, int64_t size) {
  for (int64_t block = 2; block <= size; block <<= 1) {
    for (int64_t stride = block >> 1; stride > 0; stride >>= 1) {
      for (int64_t i = threadIdx.x; i < size; i += blockDim.x) {
        const int64_t partner = i ^ stride;
        if (partner <= i) continue;
        const bool b_first = detail::ranks_before(keys[partner], indices[partner], keys[i], indices[i]);
        const bool a_first = detail::ranks_before(keys[i], indices[i], keys[partner], indices[partner]);
        // Rank order in the first half of each block, reverse rank order in the second.
        if ((i & block) == 0 ? b_first : a_first) {
          const float key = keys[i];
          keys[i] = keys[partner];
          keys[partner] = key;
          const uint32_t index = indices[i];
          indices[i] = indices[partner];
          indices[partner] = index;
        }
      }
      __syncthreads();
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kSelectThreads)
    select_peaks_kernel(const T* __restrict__ heatmaps, int64_t height, int64_t width, detail::PeakConstants k,
                        int64_t max_peaks, bool sigmoid, bool refine, const uint32_t* __restrict__ counts,
                        const CandidateEntry* __restrict__ candidates, int64_t capacity, float* __restrict__ x_out,
                        float* __restrict__ y_out, float* __restrict__ score_out, int32_t* __restrict__ valid_out) {
  __shared__ float keys[kPeakSortCapacity];
  __shared__ uint32_t indices[kPeakSortCapacity];
  const int64_t map = blockIdx.x;
  const int64_t count = counts[map];
  const int64_t K = max_peaks;

  // The smallest power of two that holds K kept plus every candidate, within the
  // capacity, and at least 2K so that every round takes in at least K new candidates.
  int64_t needed = K + count < kPeakSortCapacity ? K + count : kPeakSortCapacity;
  needed = needed > 2 * K ? needed : 2 * K;
  int64_t size = 2;
  while (size < needed) size <<= 1;
  const int64_t fresh = size - K;

  const float lowest = __int_as_float(static_cast<int>(0xff800000u));  // -infinity
  constexpr uint32_t kNoIndex = 0xffffffffu;
  for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
    keys[i] = lowest;
    indices[i] = kNoIndex;
  }
  const CandidateEntry* list = candidates + map * capacity;
  for (int64_t start = 0; start < count; start += fresh) {
    for (int64_t i = threadIdx.x; i < fresh; i += blockDim.x) {
      const int64_t c = start + i;
      keys[K + i] = c < count ? list[c].value : lowest;
      indices[K + i] = c < count ? list[c].index : kNoIndex;
    }
    __syncthreads();
    bitonic_sort(keys, indices, size);
  }
  __syncthreads();

  const int64_t found = count < K ? count : K;
  const MapLoad<T> load{heatmaps + map * height * width, width};
  const auto fit_value = [&](int64_t y, int64_t x) {
    const double raw = static_cast<double>(load(y, x));
    return sigmoid ? detail::sigmoid(raw) : raw;
  };
  const ContentCells& cells = k.cells;
  const float nan = __int_as_float(0x7fc00000);
  for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
    const int64_t out = map * K + i;
    if (i >= found) {
      x_out[out] = y_out[out] = score_out[out] = nan;
      continue;
    }
    const int64_t y = indices[i] / width, x = indices[i] % width;
    const double centre = fit_value(y, x);
    double dx = 0.0, dy = 0.0;
    if (refine) {
      if (x - 1 >= cells.first_x && x + 1 < cells.last_x) {
        dx = detail::quadratic_offset(fit_value(y, x - 1), centre, fit_value(y, x + 1));
      }
      if (y - 1 >= cells.first_y && y + 1 < cells.last_y) {
        dy = detail::quadratic_offset(fit_value(y - 1, x), centre, fit_value(y + 1, x));
      }
    }
    x_out[out] = static_cast<float>(detail::cell_to_source(x, dx, k.input_per_cell_x, k.x));
    y_out[out] = static_cast<float>(detail::cell_to_source(y, dy, k.input_per_cell_y, k.y));
    score_out[out] = static_cast<float>(centre);
  }
  if (threadIdx.x == 0) valid_out[map] = static_cast<int32_t>(found);
}

template <typename T>
void launch(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params,
            const detail::PeakConstants& k, const WorkspaceLayout& layout, char* workspace, cudaStream_t stream) {
  const T* values = static_cast<const T*>(heatmaps.data);
  uint32_t* counts = reinterpret_cast<uint32_t*>(workspace + layout.counts);
  CandidateEntry* candidates = reinterpret_cast<CandidateEntry*>(workspace + layout.candidates);
  const int64_t maps = heatmaps.batch * heatmaps.channels;

  check_cuda(cudaMemsetAsync(counts, 0, sizeof(uint32_t) * static_cast<size_t>(maps), stream),
             "clearing the candidate counters");
  const int64_t cells = maps * layout.capacity;
  if (cells > 0) {
    constexpr int64_t kMarkThreads = 256;
    const int64_t blocks = (cells + kMarkThreads - 1) / kMarkThreads;
    mark_candidates_kernel<T><<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), kMarkThreads, 0, stream>>>(
        values, heatmaps.height, heatmaps.width, maps, heatmaps.channels, params.radius, k, counts, candidates,
        layout.capacity);
  }
  select_peaks_kernel<T><<<static_cast<unsigned>(maps), kSelectThreads, 0, stream>>>(
      values, heatmaps.height, heatmaps.width, k, params.max_peaks, params.activation == PeakActivation::kSigmoid,
      params.refine, counts, candidates, layout.capacity, peaks.x, peaks.y, peaks.score, peaks.valid);
}

size_t map_bytes(MapType type) { return type == MapType::kFloat32 ? 4 : 2; }

}  // namespace

size_t heatmap_peaks_cuda_workspace_bytes(const HeatmapsView& heatmaps, const HeatmapPeaksParams& params) {
  if (heatmaps.batch < 1 || heatmaps.channels < 1 || heatmaps.height < 1 || heatmaps.width < 1) {
    throw std::invalid_argument("heatmap_peaks: heatmaps must be [N, C, h, w] with every size >= 1");
  }
  check_geometry(params.geometry, kOp);
  return workspace_layout(heatmaps, content_cells(params.geometry, heatmaps.height, heatmaps.width)).total;
}

void heatmap_peaks_cuda(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params,
                        void* workspace, size_t workspace_bytes, CUstream_st* stream) {
  check_heatmap_peaks_args(heatmaps, peaks, params);
  const detail::PeakConstants k = detail::make_peak_constants(heatmaps, params);
  const WorkspaceLayout layout = workspace_layout(heatmaps, k.cells);
  cuda::check_workspace("heatmap_peaks", workspace, workspace_bytes, layout.total);
  char* base = static_cast<char*>(workspace);
  if (heatmaps.type == MapType::kFloat32) {
    launch<float>(heatmaps, peaks, params, k, layout, base, stream);
  } else {
    launch<uint16_t>(heatmaps, peaks, params, k, layout, base, stream);
  }
  check_cuda(cudaGetLastError(), "kernel launch");
}

void heatmap_peaks_cuda_host(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params) {
  check_heatmap_peaks_args(heatmaps, peaks, params);
  check_heatmaps_finite(heatmaps, kOp);
  cuda::require_device(kOp);

  const int64_t maps = heatmaps.batch * heatmaps.channels;
  const size_t input_bytes = static_cast<size_t>(maps * heatmaps.height * heatmaps.width) * map_bytes(heatmaps.type);
  const size_t peak_count = static_cast<size_t>(maps * params.max_peaks);
  const size_t workspace_bytes = heatmap_peaks_cuda_workspace_bytes(heatmaps, params);

  cuda::Stream stream(kOp);
  cuda::DeviceBuffer device_heatmaps(input_bytes, kOp);
  // x, y and score one after another, then valid.
  cuda::DeviceBuffer device_peaks(sizeof(float) * 3 * peak_count + sizeof(int32_t) * static_cast<size_t>(maps), kOp);
  cuda::DeviceBuffer workspace(workspace_bytes, kOp);

  check_cuda(cudaMemcpyAsync(device_heatmaps.get(), heatmaps.data, input_bytes, cudaMemcpyHostToDevice, stream.get()),
             "copying the heatmaps to the device");
  HeatmapsView device_in = heatmaps;
  device_in.data = device_heatmaps.get();
  float* device_floats = static_cast<float*>(device_peaks.get());
  PeaksView device_out = peaks;
  device_out.x = device_floats;
  device_out.y = device_floats + peak_count;
  device_out.score = device_floats + 2 * peak_count;
  device_out.valid = reinterpret_cast<int32_t*>(device_floats + 3 * peak_count);

  heatmap_peaks_cuda(device_in, device_out, params, workspace.get(), workspace_bytes, stream.get());

  // Staged on the host so that the outputs are written only once everything has succeeded.
  std::vector<float> staged(3 * peak_count);
  std::vector<int32_t> staged_valid(static_cast<size_t>(maps));
  check_cuda(cudaMemcpyAsync(staged.data(), device_floats, sizeof(float) * 3 * peak_count, cudaMemcpyDeviceToHost,
                             stream.get()),
             "copying the peaks to the host");
  check_cuda(cudaMemcpyAsync(staged_valid.data(), device_out.valid, sizeof(int32_t) * static_cast<size_t>(maps),
                             cudaMemcpyDeviceToHost, stream.get()),
             "copying the peak counts to the host");
  check_cuda(cudaStreamSynchronize(stream.get()), "running the heatmap peaks kernels");
  std::memcpy(peaks.x, staged.data(), sizeof(float) * peak_count);
  std::memcpy(peaks.y, staged.data() + peak_count, sizeof(float) * peak_count);
  std::memcpy(peaks.score, staged.data() + 2 * peak_count, sizeof(float) * peak_count);
  std::memcpy(peaks.valid, staged_valid.data(), sizeof(int32_t) * static_cast<size_t>(maps));
}

}  // namespace radedge
