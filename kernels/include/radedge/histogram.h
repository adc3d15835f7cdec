// The histogram op: how many pixels hold each stored value, over a lookup table's range.
//
// It feeds percentile windowing (radedge.intensity.build_lut with a Percentile VOI): the
// window is read off the cumulative counts, so the op only counts, in one pass:
//
//   counts[b] = #{ (y, x) in region : clamp(stored(y, x) - first_value, 0, bins - 1) == b
//                                     and not (skip_padding and padding_low <= stored(y, x) <= padding_high) }
//
// Stored values outside [first_value, first_value + bins - 1] land in the end bins, as
// the preprocess op's table lookup clamps them to its end entries. Pixel padding (PS3.3
// C.7.5.1.1.2 Pixel Padding Value / Pixel Padding Range Limit: pixels that hold no image,
// e.g. outside the collimator) is not counted at all, so it cannot pull a percentile.
#pragma once

#include <cstdint>

#include "radedge/preprocess.h"
#include "radedge/region.h"

struct CUstream_st;

namespace radedge {

// int64[bins], contiguous; on CUDA the same bits are read as unsigned long long.
struct HistogramView {
  int64_t* counts = nullptr;
  int64_t bins = 0;
};

// region_*: the rectangle counted (width / height -1: to the edge; default the whole
// image), as the preprocess crop. padding_low .. padding_high (inclusive stored values)
// are skipped when skip_padding is set.
struct HistogramParams {
  int64_t first_value = 0;  // stored value counted in bin 0
  int64_t region_x = 0;
  int64_t region_y = 0;
  int64_t region_width = -1;
  int64_t region_height = -1;
  bool skip_padding = false;
  int64_t padding_low = 0;
  int64_t padding_high = 0;
};

// The one argument check, for both backends and the binding: stored-value pixels only
// (uint8 / uint16 / int16; float32 has no stored values to count), 1 to 65536 bins, a
// first value in the int32 range, a region inside the image, padding_low <= padding_high.
// Throws std::invalid_argument naming what is wrong.
void check_histogram_args(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params);

// On the calling thread plus up to threads - 1 workers (0: default_thread_count()).
// Overwrites every bin of counts; the result does not depend on the thread count.
void histogram_cpu(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params, int threads);

// CUDA (kernels/cuda/histogram.cu). pixels and counts are device memory. Enqueues a
// memset of counts and one kernel on `stream` and returns; allocates nothing, so it can
// be captured in a CUDA graph. Blocks count into privatised shared-memory histograms when
// bins fit (4 bytes a bin, up to the device's opt-in shared memory per block) and add them
// to counts with atomics; larger ranges (all 65536 values of 16-bit data need 256 KiB,
// more than any current GPU gives a block) count with atomics straight into counts.
// Throws CudaError on a CUDA failure.
void histogram_cuda(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params,
                    CUstream_st* stream);

// The same on host arrays, for tests and one-off use: copies the pixels in, runs, waits
// and copies the counts out. `counts` is untouched if anything fails.
void histogram_cuda_host(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params);

}  // namespace radedge
