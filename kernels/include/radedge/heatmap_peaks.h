// Heatmap peaks: landmark and keypoint heads ([N, C, h, w] heatmaps) -> up to K peaks per
// channel, in source-image pixels.
//
// For every channel of every image, on the content cells of the grid (the cells whose
// centres lie inside the content rectangle, see radedge/head_grid.h; cells over the
// letterbox padding are neither peaks nor neighbours):
//
// 1. Candidates. Local-maxima mode: cell p with raw value v is a peak when
//      - v >= every raw value in its (2r + 1) x (2r + 1) window (clipped to the content cells),
//      - v >  every raw value that comes before p in raster order in that window, and
//      - score(v) >= threshold[c], decided exactly as v >= logit(threshold) for sigmoid.
//    The second rule breaks ties in raster order: a flat maximum whose cells all lie within
//    r of each other (Chebyshev distance), or which is a rectangle, gives exactly one peak,
//    its first cell. (A flat ridge bent so that a cell has no equal cell before it in its
//    window, such as a U opening upwards, gives one peak per such cell.)
//    Argmax mode: the one content cell with the largest raw value, the first in raster
//    order among equals, and no threshold. It is a peak by the rules above for every r, so
//    it is the first peak that local-maxima mode with K = 1 and no threshold returns.
// 2. Top K: candidates ranked by raw value, descending (the activation is monotone, so
//    this is the score order, and logits that saturate to the same float score stay
//    apart), then by raster index, ascending.
// 3. Sub-pixel refinement (when enabled), per axis, on the scores in float64: the vertex of
//    the parabola through the cell and its two neighbours,
//      dx = (f(x+1) - f(x-1)) / (2 * (2 f(x) - f(x+1) - f(x-1))), clamped to [-0.5, 0.5],
//    and dx = 0 when a neighbour is not a content cell or the three values are flat
//    (denominator <= 0). The fit is exact for a quadratic peak.
// 4. Source coordinates: the refined cell centre in input pixels,
//      x_input = (x + 0.5 + dx) * (input_width / w),
//      x_source = (x_input - offset_x) / scale_x + crop_x
//    (continuous coordinates: 10.5 is the centre of source column 10). A position stays
//    inside the content: a cell's own centre is, and an offset moves it at most half a cell
//    towards a neighbour whose centre is.
//
// Outputs are fixed-size: x, y, score float32 [N, C, K] with the peaks of a channel first,
// best first, and valid int32 [N, C], the number of peaks found (<= K). Entries past
// valid[n, c] are NaN. score is the raw value (activation none) or the float32 of
// 1 / (1 + exp(-raw)) evaluated in float64 (sigmoid).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "radedge/head_grid.h"

// cudaStream_t is `CUstream_st*`; naming the struct keeps this header free of CUDA includes.
struct CUstream_st;

namespace radedge {

enum class PeakMode : int { kLocalMaxima, kArgmax };
enum class PeakActivation : int { kNone, kSigmoid };

// Bounds of the op. K is bounded by the CUDA selection, which ranks candidates in a
// shared-memory bitonic sort of kPeakSortCapacity entries, K of which carry the best so far.
constexpr int64_t kMaxPeaks = 1024;
constexpr int64_t kPeakSortCapacity = 2 * kMaxPeaks;
constexpr int64_t kMaxPeakRadius = 32;
// Per-channel thresholds travel to the CUDA kernel by value.
constexpr int64_t kMaxPeakThresholds = 256;

// C-contiguous [batch, channels, height, width] head output.
struct HeatmapsView {
  const void* data = nullptr;
  MapType type = MapType::kFloat32;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// The outputs, each C-contiguous: x, y, score float32 [batch, channels, max_peaks] and
// valid int32 [batch, channels].
struct PeaksView {
  float* x = nullptr;
  float* y = nullptr;
  float* score = nullptr;
  int32_t* valid = nullptr;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t max_peaks = 0;
};

// threshold: score units, one value (every channel) or one per channel; unused in argmax
// mode. For sigmoid it must lie in [0, 1). max_peaks is K (1 in argmax mode). Every image
// of the batch was placed in the model input as `geometry` says.
struct HeatmapPeaksParams {
  PeakMode mode = PeakMode::kLocalMaxima;
  PeakActivation activation = PeakActivation::kNone;
  std::vector<double> threshold{0.5};
  int64_t max_peaks = 1;
  int64_t radius = 1;
  bool refine = true;
  InputGeometry geometry;
};

// The one place where the op's arguments are checked, by every backend and the binding.
// Throws std::invalid_argument naming the argument, what arrived and what is expected.
// Does not read the heatmap values (see check_heatmaps_finite).
void check_heatmap_peaks_args(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params);

// Throws std::invalid_argument naming the first NaN or infinity in host-memory heatmaps.
void check_heatmaps_finite(const HeatmapsView& heatmaps, const char* op);

// Runs on the calling thread plus up to threads - 1 workers (0: default_thread_count());
// the result does not depend on the thread count. Refuses non-finite heatmap values.
void heatmap_peaks_cpu(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params,
                       int threads);

// CUDA (kernels/cuda/heatmap_peaks.cu). Every pointer is device memory. Enqueues the op on
// `stream` and returns without waiting: a memset of the candidate counters, a kernel that
// marks candidates (one thread per content cell), and a kernel that selects, refines and
// maps the top K of each channel (one block per channel). `workspace` holds the
// candidates of every channel, so it grows with N * C * h * w (8 bytes per content cell);
// it must be at least heatmap_peaks_cuda_workspace_bytes(...) bytes, 256-byte aligned,
// and untouched until the op has run. Allocates nothing, so it can be captured in a CUDA
// graph. The values are not checked on the device: non-finite values give unspecified
// peaks (never writes outside the outputs). Results equal the CPU op's: the same
// candidates, order and valid counts; positions and sigmoid scores to float64 rounding.
size_t heatmap_peaks_cuda_workspace_bytes(const HeatmapsView& heatmaps, const HeatmapPeaksParams& params);
void heatmap_peaks_cuda(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params,
                        void* workspace, size_t workspace_bytes, CUstream_st* stream);

// The same op on host arrays, for tests and one-off use: checks the values are finite,
// allocates device memory, copies in, runs, waits, copies the peaks back and frees. The
// outputs are untouched if anything fails.
void heatmap_peaks_cuda_host(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params);

namespace detail {

// The per-call constants, small enough to pass to a kernel by value.
struct PeakConstants {
  float raw_threshold[kMaxPeakThresholds];  // smallest float raw value that passes, per channel
  int64_t threshold_count;                  // 1 (broadcast) or channels
  double input_per_cell_x;                  // input_width / w
  double input_per_cell_y;
  GeometryAxis x, y;                        // of params.geometry
  ContentCells cells;
};
PeakConstants make_peak_constants(const HeatmapsView& heatmaps, const HeatmapPeaksParams& params);

// Whether candidate a (raw value, raster index) ranks before candidate b.
RADEDGE_HOST_DEVICE inline bool ranks_before(float value_a, uint32_t index_a, float value_b, uint32_t index_b) {
  return value_a > value_b || (value_a == value_b && index_a < index_b);
}

// The local-maximum rule for cell (y, x) holding `value`; load(y, x) reads a raw value.
template <typename Load>
RADEDGE_HOST_DEVICE inline bool is_local_maximum(const Load& load, int64_t y, int64_t x, float value, int64_t radius,
                                                 const ContentCells& cells) {
  const int64_t top = y - radius > cells.first_y ? y - radius : cells.first_y;
  const int64_t bottom = y + radius < cells.last_y - 1 ? y + radius : cells.last_y - 1;
  const int64_t left = x - radius > cells.first_x ? x - radius : cells.first_x;
  const int64_t right = x + radius < cells.last_x - 1 ? x + radius : cells.last_x - 1;
  for (int64_t ny = top; ny <= bottom; ++ny) {
    for (int64_t nx = left; nx <= right; ++nx) {
      const float neighbour = load(ny, nx);
      if (neighbour > value) return false;
      const bool before = ny < y || (ny == y && nx < x);
      if (before && neighbour == value) return false;
    }
  }
  return true;
}

// The sigmoid score in float64; the fit uses it unrounded, the output rounds it to float.
RADEDGE_HOST_DEVICE inline double sigmoid(double raw) { return 1.0 / (1.0 + exp(-raw)); }

// The vertex of the parabola through (-1, before), (0, centre), (+1, after), clamped to
// [-0.5, 0.5]; 0 when the three values are flat or curve upwards.
RADEDGE_HOST_DEVICE inline double quadratic_offset(double before, double centre, double after) {
  const double curvature = add_rn(add_rn(mul_rn(2.0, centre), -after), -before);
  if (!(curvature > 0.0)) return 0.0;
  const double offset = add_rn(after, -before) / mul_rn(2.0, curvature);
  return offset < -0.5 ? -0.5 : (offset > 0.5 ? 0.5 : offset);
}

// Source coordinate of a refined cell position along one axis (see the header comment).
RADEDGE_HOST_DEVICE inline double cell_to_source(int64_t cell, double offset, double input_per_cell,
                                                 const GeometryAxis& axis) {
  return input_to_source(axis, mul_rn(add_rn(static_cast<double>(cell) + 0.5, offset), input_per_cell));
}

}  // namespace detail
}  // namespace radedge
