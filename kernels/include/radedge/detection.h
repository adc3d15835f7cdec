// Detection post-processing from fixed-shape detector outputs: decode, score threshold,
// per-image top-k, greedy class-aware NMS, a fixed number of output slots, and the map
// back to source-image pixels. Three ops share the machinery:
//
//   decode_dense   anchor-free dense maps (FCOS / CenterNet style), several levels:
//                    scores     [N, K, h_l, w_l]  class logits (or probabilities)
//                    distances  [N, 4, h_l, w_l]  left, top, right, bottom from the cell centre
//                    centerness [N, 1, h_l, w_l]  optional logit (or probability)
//                  cell (x, y) of a level with stride s has its centre at
//                  ((x + cell_offset) * s, (y + cell_offset) * s) in model-input pixels
//                  (cell_offset 0.5 by default; 0 for heads trained with corner grids), and
//                  its box is (cx - l * u, cy - t * u, cx + r * u, cy + b * u) with u = s
//                  (distances in strides) or u = 1 (distances in pixels).
//   decode_boxes   already-decoded boxes [N, M, 4] (x1 y1 x2 y2, or cx cy w h) and
//                  scores [N, M, K] (logits or probabilities).
//   nms            one image's boxes float32 [M, 4] (x1 y1 x2 y2), scores [M], optional
//                  classes int32 [M]; returns the kept box indices.
//
// Scores. A logit x becomes sigmoid(x) = 1 / (1 + exp(-x)), evaluated in double by
// detail::sigmoid below and rounded once to float32; with centerness the score is
// sqrt(cls * ctr) (FCOS) or cls * ctr, in float32. A candidate is one (box, class) pair
// whose score is > score_threshold (strictly).
//
// Order, defined once for every op and backend. Candidates are sorted by float32 score,
// descending; equal scores are broken by the lower flat index: for decode_dense the index
// runs over levels in the order given, then classes, then rows y, then columns x; for
// decode_boxes it is box * K + class; for nms the box index. The first pre_nms_top_k
// candidates of each image go to NMS.
//
// NMS is greedy in that order: a candidate is kept unless an earlier kept candidate of the
// same class (any class when class_agnostic) overlaps it with IoU > iou_threshold
// (strictly greater: IoU equal to the threshold does not suppress). IoU uses continuous
// coordinates: width = max(0, x2 - x1), no +1; area = width * height; IoU = intersection /
// (area_a + area_b - intersection) in float32, and a pair whose union is 0 (two zero-area
// boxes) has IoU 0, so a zero-area box never suppresses nor is suppressed. NMS runs on the
// boxes in model-input pixels, before the map to the source image and its clipping.
// Keeping stops at max_detections.
//
// The CPU and CUDA backends evaluate every float expression in this header with the same
// IEEE operations in the same order (no fused multiply-adds: the device code uses the _rn
// intrinsics, and kernels/cpu/detection.cpp turns off GCC's fusing, which aarch64 hosts
// such as Jetson would otherwise apply), so they give bit-identical results.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "radedge/geometry.h"
#include "radedge/host_device.h"

// cudaStream_t is `CUstream_st*`; naming the struct keeps this header free of CUDA includes.
struct CUstream_st;

namespace radedge {

// Element type of the detector's output tensors; float16 is IEEE binary16 bits.
enum class TensorType : int { kFloat32, kFloat16 };
// What the score tensors hold.
enum class ScoreKind : int { kLogits, kProbabilities };
// How decode_dense combines class and centerness scores (FCOS uses the geometric mean).
enum class CenternessMode : int { kGeometricMean, kProduct };
// Unit of the dense distances: multiples of the level's stride, or model-input pixels.
enum class DistanceUnits : int { kStrides, kPixels };
// Layout of decoded boxes: corners x1 y1 x2 y2, or centre and size cx cy w h.
enum class BoxFormat : int { kCorners, kCentreSize };

// Limits checked by every op. Bitmask NMS holds top_k^2 / 8 bytes per image on the GPU
// (128 MiB at the limit); sort keys carry the image, the score and the flat index in 64 bits.
constexpr int64_t kMaxNmsCandidates = int64_t{1} << 15;  // pre_nms_top_k, max_detections, nms boxes
constexpr int64_t kMaxLevels = 8;
constexpr int64_t kMaxBatch = 65535;
constexpr int64_t kMaxFlatCandidates = (int64_t{1} << 31) - 1;  // batch * candidates per image

// One level of a dense head; pointers to C-contiguous tensors of the head's TensorType.
struct DenseLevelView {
  const void* scores = nullptr;      // [batch, classes, height, width]
  const void* distances = nullptr;   // [batch, 4, height, width]: left, top, right, bottom
  const void* centerness = nullptr;  // [batch, 1, height, width], or null when the head has none
  int64_t height = 0;
  int64_t width = 0;
  float stride = 0.0f;  // model-input pixels per cell
};

// All levels share the batch, the class count, the element type and whether centerness
// is present.
struct DenseHeadView {
  std::vector<DenseLevelView> levels;
  TensorType type = TensorType::kFloat32;
  int64_t batch = 0;
  int64_t classes = 0;
};

struct DenseDecodeParams {
  ScoreKind scores = ScoreKind::kLogits;  // for both class scores and centerness
  CenternessMode centerness = CenternessMode::kGeometricMean;
  DistanceUnits distance_units = DistanceUnits::kStrides;
  float cell_offset = 0.5f;  // in [0, 1]
};

// C-contiguous boxes [batch, count, 4] and scores [batch, count, classes], one TensorType.
struct BoxesView {
  const void* boxes = nullptr;
  const void* scores = nullptr;
  TensorType type = TensorType::kFloat32;
  int64_t batch = 0;
  int64_t count = 0;
  int64_t classes = 0;
};

struct BoxesDecodeParams {
  ScoreKind scores = ScoreKind::kProbabilities;
  BoxFormat format = BoxFormat::kCorners;
};

struct NmsParams {
  float score_threshold = 0.05f;  // in [0, 1); a candidate needs score > score_threshold
  float iou_threshold = 0.5f;     // in [0, 1]; IoU > iou_threshold suppresses
  int64_t pre_nms_top_k = 1000;   // 1 .. kMaxNmsCandidates, per image
  int64_t max_detections = 100;   // 1 .. kMaxNmsCandidates, per image
  bool class_agnostic = false;
};

// The fixed-size result: C-contiguous boxes float32 [batch, max_detections, 4] (x1 y1 x2 y2
// in source pixels, or model-input pixels when no geometry is given), scores float32
// [batch, max_detections], classes int32 [batch, max_detections], valid int32 [batch].
// Slots from valid[n] on are zero. valid[n] = -1 (all slots zero) is the CUDA ops' report
// of an image whose inputs are refused (see "Refused values").
struct DetectionsView {
  float* boxes = nullptr;
  float* scores = nullptr;
  int32_t* classes = nullptr;
  int32_t* valid = nullptr;
  int64_t batch = 0;
  int64_t max_detections = 0;
};

// One image for nms: boxes float32 [count, 4] x1 y1 x2 y2, scores float32 [count], classes
// int32 [count] or null (class-agnostic). All C-contiguous.
struct NmsBoxesView {
  const float* boxes = nullptr;
  const float* scores = nullptr;
  const int32_t* classes = nullptr;
  int64_t count = 0;
};

// Refused values. The checks below look at shapes and parameters only. Values are checked
// while the op reads them: a NaN anywhere in scores or centerness, a non-finite
// probability, or a non-finite coordinate of a candidate's box (score above the
// threshold; every box for nms). The CPU ops throw std::invalid_argument before writing
// anything; the CUDA ops cannot stop a queued stream, so they set valid[n] = -1 (keep_count
// = -1 for nms), and the *_cuda_host conveniences turn that into std::invalid_argument.

// The argument checks shared by the backends and the binding; each throws
// std::invalid_argument naming the argument, what arrived and what is expected.
void check_nms_params(const NmsParams& params);
void check_decode_dense_args(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                             const DetectionsView& out);
void check_decode_boxes_args(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                             const DetectionsView& out);
void check_nms_args(const NmsBoxesView& input, float iou_threshold, int64_t max_detections);
// CPU. `geometries` is null (results stay in model-input pixels, unclipped) or holds one
// InputGeometry per image. Runs on the calling thread plus up to threads - 1 workers
// (0: default_thread_count()); the result does not depend on the thread count.
void decode_dense_cpu(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                      const InputGeometry* geometries, const DetectionsView& out, int threads);
void decode_boxes_cpu(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                      const InputGeometry* geometries, const DetectionsView& out, int threads);
// Writes the kept indices, in NMS order, to keep[0 .. returned count); keep holds
// max_detections entries and the rest of it is set to -1.
int64_t nms_cpu(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep, int threads);

// CUDA (kernels/cuda/detection.cu). Every pointer is device memory, `geometries` included
// (null or one per image; an image whose geometry breaks geometry_is_valid is refused, valid
// = -1, as a refused value is). Each op enqueues its kernels on `stream` and returns without
// waiting; `workspace` must be at least *_workspace_bytes(...) bytes, 256-byte aligned,
// and untouched until the op has run. Nothing is allocated and nothing waits on the host,
// so the op can be captured in a CUDA graph. The workspace size depends on the shapes and
// the device's CUB configuration: query it on the device that runs the op. CUDA errors
// throw radedge::CudaError.
size_t decode_dense_cuda_workspace_bytes(const DenseHeadView& head, const NmsParams& params);
void decode_dense_cuda(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                       const InputGeometry* geometries, const DetectionsView& out, void* workspace,
                       size_t workspace_bytes, CUstream_st* stream);
size_t decode_boxes_cuda_workspace_bytes(const BoxesView& input, const NmsParams& params);
void decode_boxes_cuda(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                       const InputGeometry* geometries, const DetectionsView& out, void* workspace,
                       size_t workspace_bytes, CUstream_st* stream);
// keep: int32 [max_detections] (unused entries -1); keep_count: one int32.
size_t nms_cuda_workspace_bytes(int64_t count, int64_t max_detections);
void nms_cuda(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep,
              int32_t* keep_count, void* workspace, size_t workspace_bytes, CUstream_st* stream);

// The same ops on host arrays, for tests and one-off use: allocate device memory, copy in,
// run, wait, copy back, free. Outputs are untouched if anything fails.
void decode_dense_cuda_host(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                            const InputGeometry* geometries, const DetectionsView& out);
void decode_boxes_cuda_host(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                            const InputGeometry* geometries, const DetectionsView& out);
int64_t nms_cuda_host(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep);

namespace detail {

struct Box {
  float x1, y1, x2, y2;
};

RADEDGE_HOST_DEVICE inline float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

RADEDGE_HOST_DEVICE inline uint32_t float_to_bits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

RADEDGE_HOST_DEVICE inline double double_from_bits(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// IEEE binary16 bits -> float, exactly (every half is a float).
RADEDGE_HOST_DEVICE inline float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

RADEDGE_HOST_DEVICE inline float load(const void* data, TensorType type, int64_t index) {
  if (type == TensorType::kFloat32) return static_cast<const float*>(data)[index];
  return half_to_float(static_cast<const uint16_t*>(data)[index]);
}

RADEDGE_HOST_DEVICE inline bool is_nan(float value) { return value != value; }
RADEDGE_HOST_DEVICE inline bool is_finite(float value) { return value - value == 0.0f; }

RADEDGE_HOST_DEVICE inline float sqrt_rn(float value) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(value);
#else
  return std::sqrt(value);
#endif
}

// 1 / (1 + exp(-logit)) rounded to float32, from basic IEEE operations only, so the host
// and the device compute the same bits (their exp functions differ in the last place).
// exp(y) = 2^k * exp(r) with k = round(y / ln 2) and r = y - k ln 2 (Cody-Waite, ln 2 split
// so that k * ln2_hi is exact), |r| <= 0.35, and exp(r) from its degree-13 Taylor
// polynomial (truncation < 1e-17), evaluated by Estrin's scheme: a dependency chain of 8
// operations instead of Horner's 26. The double result is within 1e-15 of the true
// sigmoid; rounding it to float32 gives the correctly rounded float32 except when the true
// value lies within about 1e-15 of a rounding boundary.
RADEDGE_HOST_DEVICE inline float sigmoid(float logit) {
  // Beyond these the float32 result is exactly 0 or 1 (exp(-120) < 2^-149 / 2 and
  // exp(-40) < 2^-25); this also handles infinities. NaN is refused before this is called.
  if (logit <= -120.0f) return 0.0f;
  if (logit >= 40.0f) return 1.0f;
  const double y = -static_cast<double>(logit);
  const double ln2_hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000: low 32 bits zero
  const double ln2_lo = 1.90821492927058770002e-10;
  const double inv_ln2 = 1.44269504088896338700e+00;
  const double k = floor(add_rn(mul_rn(y, inv_ln2), 0.5));
  const double r = add_rn(add_rn(y, -mul_rn(k, ln2_hi)), -mul_rn(k, ln2_lo));
  const double r2 = mul_rn(r, r);
  const double r4 = mul_rn(r2, r2);
  const double r8 = mul_rn(r4, r4);
  // Pairs c_i + c_{i+1} r of the Taylor coefficients c_i = 1 / i!.
  const double p01 = add_rn(1.0, r);
  const double p23 = add_rn(0.5, mul_rn(1.6666666666666666e-01, r));
  const double p45 = add_rn(4.1666666666666664e-02, mul_rn(8.333333333333333e-03, r));
  const double p67 = add_rn(1.388888888888889e-03, mul_rn(1.984126984126984e-04, r));
  const double p89 = add_rn(2.48015873015873e-05, mul_rn(2.7557319223985893e-06, r));
  const double p1011 = add_rn(2.755731922398589e-07, mul_rn(2.505210838544172e-08, r));
  const double p1213 = add_rn(2.08767569878681e-09, mul_rn(1.6059043836821613e-10, r));
  const double p0to3 = add_rn(p01, mul_rn(p23, r2));
  const double p4to7 = add_rn(p45, mul_rn(p67, r2));
  const double p8to11 = add_rn(p89, mul_rn(p1011, r2));
  const double p0to7 = add_rn(p0to3, mul_rn(p4to7, r4));
  const double p8to13 = add_rn(p8to11, mul_rn(p1213, r4));
  const double p = add_rn(p0to7, mul_rn(p8to13, r8));
  // 2^k for k in [-58, 174] (y in (-40, 120)), built from its bits: exact.
  const double power = double_from_bits(static_cast<uint64_t>(static_cast<int64_t>(k) + 1023) << 52);
  const double e = mul_rn(p, power);
  return static_cast<float>(div_rn(1.0, add_rn(1.0, e)));
}

// The float32 score of a class value and an optional centerness value (has_centerness).
RADEDGE_HOST_DEVICE inline float combine_scores(float class_score, float centerness_score, bool has_centerness,
                                                CenternessMode mode) {
  if (!has_centerness) return class_score;
  const float product = mul_rn(class_score, centerness_score);
  return mode == CenternessMode::kGeometricMean ? sqrt_rn(product) : product;
}

// The box of a dense cell: unit is the stride (DistanceUnits::kStrides) or 1.
RADEDGE_HOST_DEVICE inline Box dense_box(int64_t x, int64_t y, float stride, float cell_offset, float unit, float left,
                                         float top, float right, float bottom) {
  const float cx = mul_rn(add_rn(static_cast<float>(x), cell_offset), stride);
  const float cy = mul_rn(add_rn(static_cast<float>(y), cell_offset), stride);
  return Box{add_rn(cx, -mul_rn(left, unit)), add_rn(cy, -mul_rn(top, unit)), add_rn(cx, mul_rn(right, unit)),
             add_rn(cy, mul_rn(bottom, unit))};
}

RADEDGE_HOST_DEVICE inline Box decoded_box(float a, float b, float c, float d, BoxFormat format) {
  if (format == BoxFormat::kCorners) return Box{a, b, c, d};
  const float half_width = mul_rn(c, 0.5f), half_height = mul_rn(d, 0.5f);
  return Box{add_rn(a, -half_width), add_rn(b, -half_height), add_rn(a, half_width), add_rn(b, half_height)};
}

RADEDGE_HOST_DEVICE inline bool box_is_finite(const Box& box) {
  return is_finite(box.x1) && is_finite(box.y1) && is_finite(box.x2) && is_finite(box.y2);
}

RADEDGE_HOST_DEVICE inline float max0(float value) { return value > 0.0f ? value : 0.0f; }

RADEDGE_HOST_DEVICE inline float box_area(float x1, float y1, float x2, float y2) {
  return mul_rn(max0(add_rn(x2, -x1)), max0(add_rn(y2, -y1)));
}

// IoU(a, b) > threshold, with the areas from box_area. A zero union gives 0 / 0 = NaN,
// which compares false: IoU 0, as documented.
RADEDGE_HOST_DEVICE inline bool iou_exceeds(float ax1, float ay1, float ax2, float ay2, float area_a, float bx1,
                                            float by1, float bx2, float by2, float area_b, float threshold) {
  const float width = max0(add_rn(ax2 < bx2 ? ax2 : bx2, -(ax1 > bx1 ? ax1 : bx1)));
  const float height = max0(add_rn(ay2 < by2 ? ay2 : by2, -(ay1 > by1 ? ay1 : by1)));
  const float intersection = mul_rn(width, height);
  const float union_area = add_rn(add_rn(area_a, area_b), -intersection);
  return div_rn(intersection, union_area) > threshold;
}

RADEDGE_HOST_DEVICE inline float clamp(double value, double low, double high) {
  return static_cast<float>(value < low ? low : (value > high ? high : value));
}

// Model-input pixels -> source-image pixels through the image's InputGeometry (radedge/geometry.h):
//   x_src = (x_in - offset_x) / scale_x + crop_x,  clipped to [crop_x, crop_x + crop_width]
//   y_src = (y_in - offset_y) / scale_y + crop_y,  clipped to [crop_y, crop_y + crop_height]
// evaluated in double and rounded once to float32: boxes are clipped to the region the model
// saw (the whole source image when nothing was cropped). The crop's ends are exact in double.
RADEDGE_HOST_DEVICE inline float source_coordinate(float input, const GeometryAxis& axis) {
  return clamp(input_to_source(axis, static_cast<double>(input)), static_cast<double>(axis.crop_start),
               static_cast<double>(axis.crop_start + axis.crop_size));
}

RADEDGE_HOST_DEVICE inline Box map_to_source(const Box& box, const InputGeometry& g) {
  const GeometryAxis x = x_axis(g), y = y_axis(g);
  return Box{source_coordinate(box.x1, x), source_coordinate(box.y1, y), source_coordinate(box.x2, x),
             source_coordinate(box.y2, y)};
}

// A uint32 whose ascending order is the float's descending order (-0 and +0 equal);
// NaN never reaches it.
RADEDGE_HOST_DEVICE inline uint32_t descending_score_key(float score) {
  const uint32_t bits = score == 0.0f ? 0u : float_to_bits(score);
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return ~ascending;
}

RADEDGE_HOST_DEVICE inline float score_from_key(uint32_t key) {
  const uint32_t ascending = ~key;
  return bits_to_float((ascending & 0x80000000u) ? (ascending & 0x7fffffffu) : ~ascending);
}

// Which logits cannot give a score above the threshold, so that the ops skip their
// sigmoids. With the class logit x, the centerness logit c and t_eff = t (t^2 for the
// geometric mean, since centerness <= 1 and rounding is monotone):
//   score > t  needs  sigmoid(x) > t_eff                   -> x >= logit(t_eff)
//   and, with centerness,  sigmoid(x) sigmoid(c) > t_eff   -> x >= log(t_eff) + max(0, -c)
//   (sigmoid(x) < e^x and sigmoid(c) <= min(1, e^c)).
// detail::sigmoid is within 1e-14 relative of exact and each float32 rounding moves a value
// by < 2^-24, so both bounds are taken at t_eff * (1 - 1e-6) and never drop a candidate.
struct SkipBounds {
  double logit = -HUGE_VAL;                // skip x < logit
  double log_with_centerness = -HUGE_VAL;  // and x < log_with_centerness + max(0, -c)
  bool per_cell = false;                   // whether the second bound applies
};

SkipBounds skip_bounds(float score_threshold, ScoreKind scores, bool has_centerness, CenternessMode mode);

RADEDGE_HOST_DEVICE inline bool cannot_pass(float logit, float centerness_logit, const SkipBounds& bounds) {
  const double x = logit;
  if (x < bounds.logit) return true;
  if (!bounds.per_cell) return false;
  const double c = centerness_logit;
  return x < bounds.log_with_centerness + (c < 0.0 ? -c : 0.0);
}

}  // namespace detail
}  // namespace radedge
