// CUDA implementation of the histogram op (see radedge/histogram.h).
//
// Blocks take rows (block b: rows b, b + grid, ...) and their threads take columns, so a
// warp reads consecutive pixels. With kShared, a block counts into its own histogram in
// shared memory (uint32 bins) and adds the non-zero bins to the global counts once at
// the end; without it (more bins than shared memory holds), every pixel is one atomic on
// the global counts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "radedge/cuda_util.h"
#include "radedge/histogram.h"

namespace radedge {
namespace {

constexpr const char* kOp = "histogram";
constexpr unsigned kThreads = 256;

void check_cuda(cudaError_t status, const char* step) { cuda::check(status, kOp, step); }

struct Binning {
  int64_t first_value;
  int64_t bins;
  int64_t padding_low;  // padding_low > padding_high: nothing is skipped
  int64_t padding_high;
};

template <typename Pixel, bool kShared>
__global__ void histogram_kernel(const Pixel* __restrict__ pixels, int64_t row_stride, int64_t rows, int64_t columns,
                                 Binning binning, unsigned long long* __restrict__ counts) {
  extern __shared__ unsigned int block_counts[];
  if constexpr (kShared) {
    for (int64_t b = threadIdx.x; b < binning.bins; b += blockDim.x) block_counts[b] = 0u;
    __syncthreads();
  }
  for (int64_t y = blockIdx.x; y < rows; y += gridDim.x) {
    const Pixel* row = pixels + y * row_stride;
    for (int64_t x = threadIdx.x; x < columns; x += blockDim.x) {
      const int64_t value = row[x];
      if (binning.padding_low <= value && value <= binning.padding_high) continue;
      int64_t bin = value - binning.first_value;
      bin = bin < 0 ? 0 : (bin >= binning.bins ? binning.bins - 1 : bin);
      if constexpr (kShared) {
        atomicAdd(&block_counts[bin], 1u);
      } else {
        atomicAdd(&counts[bin], 1ull);
      }
    }
  }
  if constexpr (kShared) {
    __syncthreads();
    for (int64_t b = threadIdx.x; b < binning.bins; b += blockDim.x) {
      const unsigned int count = block_counts[b];
      if (count != 0u) atomicAdd(&counts[b], static_cast<unsigned long long>(count));
    }
  }
}

template <typename Pixel>
void launch(const PixelsView& region, const HistogramView& counts, const Binning& binning, cudaStream_t stream) {
  int device = 0, multiprocessors = 0, shared_optin = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device),
             "reading the multiprocessor count");
  check_cuda(cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "reading the shared memory per block");
  // A few blocks per multiprocessor keep it busy; more would only add shared histograms
  // to clear and flush. A block's uint32 counters hold at most 2^31 pixels: with rows
  // split this way, a block never sees more than ceil(rows / grid) * columns of them.
  const int64_t rows_per_block_limit = (int64_t{1} << 31) / region.columns;
  const int64_t grid_for_counters = (region.rows + rows_per_block_limit - 1) / rows_per_block_limit;
  int64_t grid = std::max<int64_t>(4 * static_cast<int64_t>(multiprocessors), grid_for_counters);
  grid = std::min<int64_t>(grid, region.rows);
  const unsigned blocks = static_cast<unsigned>(grid);

  const Pixel* pixels = static_cast<const Pixel*>(region.data);
  unsigned long long* device_counts = reinterpret_cast<unsigned long long*>(counts.counts);
  const size_t shared_bytes = sizeof(unsigned int) * static_cast<size_t>(counts.bins);
  constexpr size_t kDefaultShared = 48 * 1024;
  if (shared_bytes <= static_cast<size_t>(shared_optin)) {
    if (shared_bytes > kDefaultShared) {
      // Beyond 48 KiB a kernel must opt in; a function attribute, not stream work, so it
      // is allowed while a stream is being captured.
      check_cuda(cudaFuncSetAttribute(histogram_kernel<Pixel, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(shared_bytes)),
                 "allowing the shared histogram");
    }
    histogram_kernel<Pixel, true><<<blocks, kThreads, shared_bytes, stream>>>(
        pixels, region.row_stride, region.rows, region.columns, binning, device_counts);
  } else {
    histogram_kernel<Pixel, false><<<blocks, kThreads, 0, stream>>>(pixels, region.row_stride, region.rows,
                                                                    region.columns, binning, device_counts);
  }
}

}  // namespace

void histogram_cuda(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params,
                    CUstream_st* stream) {
  check_histogram_args(pixels, counts, params);
  const PixelRegion region = resolve_region(kOp, "region", pixels.rows, pixels.columns, params.region_x,
                                            params.region_y, params.region_width, params.region_height);
  const PixelsView view = crop_view(pixels, region);
  const Binning binning{params.first_value, counts.bins, params.skip_padding ? params.padding_low : 1,
                        params.skip_padding ? params.padding_high : 0};
  check_cuda(cudaMemsetAsync(counts.counts, 0, sizeof(int64_t) * static_cast<size_t>(counts.bins), stream),
             "clearing the counts");
  switch (pixels.type) {
    case PixelType::kUint8: launch<uint8_t>(view, counts, binning, stream); break;
    case PixelType::kUint16: launch<uint16_t>(view, counts, binning, stream); break;
    case PixelType::kInt16: launch<int16_t>(view, counts, binning, stream); break;
    case PixelType::kFloat32: break;  // refused by check_histogram_args
  }
  check_cuda(cudaGetLastError(), "kernel launch");
}

void histogram_cuda_host(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params) {
  check_histogram_args(pixels, counts, params);
  cuda::require_device(kOp);
  const size_t pixel_size = pixel_type_bytes(pixels.type);
  const size_t row_bytes = static_cast<size_t>(pixels.columns) * pixel_size;
  const int64_t host_stride = pixels.rows > 1 ? pixels.row_stride : pixels.columns;
  const size_t counts_bytes = sizeof(int64_t) * static_cast<size_t>(counts.bins);

  cuda::Stream stream(kOp);
  cuda::DeviceBuffer device_pixels(row_bytes * static_cast<size_t>(pixels.rows), kOp);
  cuda::DeviceBuffer device_counts(counts_bytes, kOp);
  check_cuda(cudaMemcpy2DAsync(device_pixels.get(), row_bytes, pixels.data, static_cast<size_t>(host_stride) * pixel_size,
                               row_bytes, static_cast<size_t>(pixels.rows), cudaMemcpyHostToDevice, stream.get()),
             "copying pixels to the device");
  PixelsView device_view = pixels;
  device_view.data = device_pixels.get();
  device_view.row_stride = pixels.columns;
  histogram_cuda(device_view, HistogramView{static_cast<int64_t*>(device_counts.get()), counts.bins}, params,
                 stream.get());
  // Staged on the host so that `counts` is written only once everything has succeeded.
  std::vector<int64_t> staged(static_cast<size_t>(counts.bins));
  check_cuda(cudaMemcpyAsync(staged.data(), device_counts.get(), counts_bytes, cudaMemcpyDeviceToHost, stream.get()),
             "copying the counts to the host");
  check_cuda(cudaStreamSynchronize(stream.get()), "running the histogram kernel");
  std::memcpy(counts.counts, staged.data(), counts_bytes);
}

}  // namespace radedge
