// The mask decode op: segmentation logits -> uint8 label mask at the source image's
// geometry (or at a display size), per-label statistics and an optional run-length
// encoding of the mask, in one pass over the output.
//
// Geometry (an InputGeometry, radedge/geometry.h). Continuous coordinates put pixel i over
// [i, i + 1) and its centre at i + 0.5, in every grid. The source image (source_rows x
// source_columns) was cropped to [crop_x, crop_x + crop_width) x [crop_y, crop_y +
// crop_height), and the crop resized into the content rectangle (offset_x, offset_y,
// content_width, content_height) of the model input (input_height x input_width). The
// logits cover the whole model input at their own resolution h x w. The mask has
// output_height x output_width pixels spread evenly over the source image (the source size
// itself by default). Per axis, output pixel i maps to
//
//   s = (i + 0.5) * (source_size / output_size)                       source coordinate
//   p = ((s - crop_start) * (content_size / crop_size) + content_offset)
//       * (logits_size / input_size) - 0.5                             logit-plane index
//
// evaluated in double precision in exactly this order (the tests' numpy reference does the
// same). A pixel whose centre s lies outside the crop gets label 0. Otherwise p is clamped
// to [0, logits_size - 1] and the logits are read bilinearly (OpenCV INTER_LINEAR's rule,
// with exact coordinates instead of warpAffine's 1/32-pixel steps), in float32:
//
//   v = (1 - fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx * v11)
//
// Labels. sigmoid (multi-label, C channels, labels 1..C): channel c qualifies where
// v_c >= logit(threshold_c), thresholds being probabilities compared in the logit domain;
// the pixel gets 1 + the qualifying channel with the highest logit (the lowest index on a
// tie), or 0 when none qualifies. So where two labels overlap, the more confident one in
// logit terms wins, whatever their thresholds. softmax (multi-class, C >= 2 channels,
// channel 0 = background): the pixel gets the argmax channel (the lowest index on a tie);
// no thresholds.
//
// Cells. Bilinear interpolation is a convex combination of the four corners of a logit
// cell, so where every corner qualifies the same channel as the overall argmax (or where no
// channel qualifies at any corner), every point of the cell has that label. Such cells are
// labelled without interpolating; only cells that straddle a boundary are interpolated.
// Both backends apply this same rule with the same unfused float32 arithmetic, so their
// masks are identical where the host compiler does not fuse multiply-adds (x86-64; GCC on
// AArch64 fuses by default, and then labels may differ where an interpolated logit is
// within float32 rounding of a threshold or of a tie). Against interpolating every pixel
// in exact arithmetic, labels differ only at such pixels too.
//
// Statistics, per label, over the output pixels: pixel count, bounding box, centroid and
// (given the source's pixel spacing) area in mm^2; integer tallies, so the results are the
// same for any thread count and on both backends.
//
// Run-length encoding: the mask in row-major order as runs of (value, length) uint32
// pairs; a run may continue from the end of one row into the next. Runs go into a buffer of
// fixed capacity; the op reports how many the whole mask needs, so a count above the
// capacity means the stored runs are only the first `capacity` ones (never an overrun).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "radedge/geometry.h"
#include "radedge/host_device.h"

struct CUstream_st;

namespace radedge {

enum class LogitType : int { kFloat32, kFloat16 };
enum class Activation : int { kSigmoid, kSoftmax };

const char* logit_type_name(LogitType type);

// Label values are 0..254; 255 is kept for "interpolate this cell". So sigmoid heads have
// at most 254 channels and softmax heads at most 255 (background + 254).
constexpr int64_t kMaxMaskLabel = 254;
// DICOM Rows and Columns are 16-bit; this also keeps every pixel index and run length of a
// mask below 2^32.
constexpr int64_t kMaxMaskSide = 65535;

// C-contiguous [batch, channels, height, width] logits; float16 is IEEE binary16 bits.
struct LogitsView {
  const void* data = nullptr;
  LogitType type = LogitType::kFloat32;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// C-contiguous uint8 [height, width]; its size is the op's output size.
struct MaskView {
  uint8_t* data = nullptr;
  int64_t height = 0;
  int64_t width = 0;
};

// uint32 [capacity][2]: (label value, run length) pairs. capacity 0: no run-length encoding.
struct RunsView {
  uint32_t* data = nullptr;
  int64_t capacity = 0;
};

struct MaskDecodeParams {
  InputGeometry geometry;  // its scales are not read: the op maps through content / crop sizes
  Activation activation = Activation::kSigmoid;
  // sigmoid: probabilities in [0, 1], one (for every channel) or one per channel;
  // softmax: empty.
  std::vector<double> thresholds{0.5};
  // Pixel spacing of the SOURCE image in mm (row spacing = between rows, i.e. the height of
  // a pixel); both 0 when unknown, and then no areas are computed.
  double row_spacing_mm = 0.0;
  double column_spacing_mm = 0.0;
};

// Raw per-label accumulators, exact integers, over output pixels (x = column, y = row).
// An empty label has pixel_count 0, min_* = ~0 and max_* = 0.
struct LabelTally {
  unsigned long long pixel_count;
  unsigned long long sum_x;
  unsigned long long sum_y;
  unsigned long long min_x;
  unsigned long long min_y;
  unsigned long long max_x;
  unsigned long long max_y;
};

// What a label covers in the output mask. bbox is x0, y0, x1, y1 with x1 / y1 exclusive,
// in output pixels (all 0 for an empty label); centroid is the mean pixel centre (x, y),
// centres at integer + 0.5 (NaN for an empty label); area_mm2 is pixel_count times the area
// of one output pixel in mm^2 (NaN without a pixel spacing).
struct LabelStats {
  int64_t pixel_count = 0;
  int64_t bbox[4] = {0, 0, 0, 0};
  double centroid[2] = {0.0, 0.0};
  double area_mm2 = 0.0;
};

struct MaskDecodeResult {
  std::vector<LabelStats> labels;  // labels 1..label_count, in order
  // Runs the whole mask needs; the first min(run_count, capacity) were stored. 0 when no
  // run-length encoding was asked for (a mask always has at least one run).
  int64_t run_count = 0;
};

// Labels other than background: C for sigmoid, C - 1 for softmax.
int64_t mask_label_count(Activation activation, int64_t channels);

// The one place where the op's arguments are checked, by every backend and the binding.
// Throws std::invalid_argument naming the argument, what arrived and what is expected.
// Does not read the logits (see the non-finite check below).
void check_mask_decode_args(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                            const MaskView& mask, const RunsView& runs);

// Decodes logits[image] into `mask` (and `runs`) on the calling thread plus up to
// threads - 1 workers (0: default_thread_count()); the results do not depend on the thread
// count. Throws std::invalid_argument before writing anything when the arguments are bad or
// logits[image] holds a NaN or an infinity.
MaskDecodeResult mask_decode_cpu(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                                 const MaskView& mask, const RunsView& runs, int threads);

// Turns the tallies of labels 1..label_count (tallies[label - 1]) into statistics, with
// areas scaled from the source's pixel spacing to the output's pixel size.
std::vector<LabelStats> mask_label_stats(const LabelTally* tallies, int64_t label_count,
                                         const MaskDecodeParams& params, const MaskView& mask);

// Device-side counters of one call.
struct MaskDecodeCounters {
  unsigned long long run_count;          // as MaskDecodeResult::run_count
  unsigned long long non_finite_logits;  // NaNs and infinities found in logits[image]
};

// CUDA (kernels/cuda/mask_decode.cu). Every pointer is device memory. Enqueues the op on
// `stream` and returns without waiting: the mask, the stored runs, tallies[0 ..
// label_count) and *counters are written by the kernels. The kernels do not stop on NaN or
// infinite logits: they count them into counters->non_finite_logits, and a caller must
// discard the results when that count is not 0 (the mask is then undefined). `workspace`
// must be at least mask_decode_cuda_workspace_bytes(...) bytes, 256-byte aligned, and
// untouched until the op has run. Allocates nothing and never synchronises, so it can be
// captured in a CUDA graph. Bad arguments throw std::invalid_argument, CUDA errors
// radedge::CudaError.
size_t mask_decode_cuda_workspace_bytes(int64_t logits_height, int64_t logits_width, int64_t mask_height,
                                        int64_t mask_width, int64_t run_capacity);
void mask_decode_cuda(const LogitsView& logits, int64_t image, const MaskDecodeParams& params, const MaskView& mask,
                      const RunsView& runs, LabelTally* tallies, MaskDecodeCounters* counters, void* workspace,
                      size_t workspace_bytes, CUstream_st* stream);

// The same op on host arrays, for tests and one-off use: copies logits[image] to the
// device, runs, waits and copies the results back. Throws std::invalid_argument for
// non-finite logits as mask_decode_cpu does; `mask` and `runs` are untouched if anything
// fails.
MaskDecodeResult mask_decode_cuda_host(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                                       const MaskView& mask, const RunsView& runs);

namespace detail {

// Marks a cell whose corners do not agree on one label: its pixels are interpolated.
constexpr uint8_t kMixedCell = 255;

// One axis of the output -> logit-plane mapping (see the top of this file).
struct MaskAxis {
  double source_per_output;  // source_size / output_size
  double crop_start;
  double crop_end;
  double content_per_crop;  // content_size / crop_size
  double content_offset;
  double logits_per_input;  // logits_size / input_size
  int64_t logits_size;
};

MaskAxis make_mask_axis(const GeometryAxis& axis, int64_t logits_size, int64_t output_size);

// Output pixel `index` of `axis`: returns the first logit index of its cell (the cell spans
// that index and the next, clamped to the plane) and sets *fraction, the weight of the
// second; or returns -1 when the pixel centre lies outside the crop.
RADEDGE_HOST_DEVICE inline int32_t mask_axis_sample(const MaskAxis& axis, int64_t index, float* fraction) {
  const double s = mul_rn(static_cast<double>(index) + 0.5, axis.source_per_output);
  if (!(s >= axis.crop_start && s < axis.crop_end)) {
    *fraction = 0.0f;
    return -1;
  }
  double p = add_rn(mul_rn(add_rn(mul_rn(add_rn(s, -axis.crop_start), axis.content_per_crop), axis.content_offset),
                           axis.logits_per_input),
                    -0.5);
  const double last = static_cast<double>(axis.logits_size - 1);
  p = p < 0.0 ? 0.0 : (p > last ? last : p);
  int64_t cell = static_cast<int64_t>(floor(p));
  // The last cell of the plane also takes p == logits_size - 1, with weight 1 on its second
  // logit, so every cell index has a neighbour (or is the only logit, for a 1-wide plane).
  const int64_t last_cell = axis.logits_size >= 2 ? axis.logits_size - 2 : 0;
  cell = cell < last_cell ? cell : last_cell;
  *fraction = static_cast<float>(add_rn(p, -static_cast<double>(cell)));
  return static_cast<int32_t>(cell);
}

// The per-call constants of the labelling rule, small enough to pass to a kernel by value.
struct MaskRule {
  Activation activation;
  int32_t channels;
  float logit_threshold[kMaxMaskLabel];  // sigmoid: logit(threshold) per channel
};

MaskRule make_mask_rule(const MaskDecodeParams& params, int64_t channels);

RADEDGE_HOST_DEVICE inline float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  static_assert(sizeof value == sizeof bits, "float is 32 bits");
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// IEEE binary16 bits -> float, exactly (every half is a float).
RADEDGE_HOST_DEVICE inline float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // infinity, NaN
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

RADEDGE_HOST_DEVICE inline float load_logit(const float* at) { return *at; }
RADEDGE_HOST_DEVICE inline float load_logit(const uint16_t* at) { return half_to_float(*at); }

// The label at one logit (all channels at plane index `index`), plus whether the whole
// cell rule can use it: 0 when no channel qualifies, 1 + c when channel c qualifies and is
// the argmax of all channels (sigmoid); the argmax (softmax); kMixedCell when some channel
// qualifies but the argmax does not (sigmoid), so a cell touching it must be interpolated.
template <typename T>
RADEDGE_HOST_DEVICE inline uint8_t point_code(const T* image_logits, int64_t plane, int64_t index,
                                              const MaskRule& rule) {
  int32_t best = 0;
  float best_value = load_logit(image_logits + index);
  bool any_qualifies = rule.activation == Activation::kSigmoid && best_value >= rule.logit_threshold[0];
  for (int32_t c = 1; c < rule.channels; ++c) {
    const float value = load_logit(image_logits + c * plane + index);
    if (rule.activation == Activation::kSigmoid && value >= rule.logit_threshold[c]) any_qualifies = true;
    if (value > best_value) {
      best = c;
      best_value = value;
    }
  }
  if (rule.activation == Activation::kSoftmax) return static_cast<uint8_t>(best);
  if (best_value >= rule.logit_threshold[best]) return static_cast<uint8_t>(best + 1);
  return any_qualifies ? kMixedCell : 0;
}

// The label of every point of a cell whose corners have these codes, or kMixedCell.
RADEDGE_HOST_DEVICE inline uint8_t cell_label(uint8_t c00, uint8_t c01, uint8_t c10, uint8_t c11) {
  return (c00 == c01 && c00 == c10 && c00 == c11) ? c00 : kMixedCell;
}

// The label at one point of cell (x0..x1, y0..y1) with weights fx, fy on x1, y1.
template <typename T>
RADEDGE_HOST_DEVICE inline uint8_t interpolated_label(const T* image_logits, int64_t plane, int64_t width,
                                                      int64_t x0, int64_t x1, int64_t y0, int64_t y1, float fx,
                                                      float fy, const MaskRule& rule) {
  const float wx0 = 1.0f - fx, wy0 = 1.0f - fy;
  const int64_t i00 = y0 * width + x0, i01 = y0 * width + x1, i10 = y1 * width + x0, i11 = y1 * width + x1;
  int32_t best = -1;
  float best_value = 0.0f;
  for (int32_t c = 0; c < rule.channels; ++c) {
    const T* channel = image_logits + c * plane;
    const float top = add_rn(mul_rn(wx0, load_logit(channel + i00)), mul_rn(fx, load_logit(channel + i01)));
    const float bottom = add_rn(mul_rn(wx0, load_logit(channel + i10)), mul_rn(fx, load_logit(channel + i11)));
    const float value = add_rn(mul_rn(wy0, top), mul_rn(fy, bottom));
    const bool candidate = rule.activation == Activation::kSoftmax || value >= rule.logit_threshold[c];
    if (candidate && (best < 0 || value > best_value)) {
      best = c;
      best_value = value;
    }
  }
  if (rule.activation == Activation::kSoftmax) return static_cast<uint8_t>(best);
  return static_cast<uint8_t>(best + 1);
}

RADEDGE_HOST_DEVICE inline LabelTally empty_tally() {
  return LabelTally{0ull, 0ull, 0ull, ~0ull, ~0ull, 0ull, 0ull};
}

}  // namespace detail
}  // namespace radedge
