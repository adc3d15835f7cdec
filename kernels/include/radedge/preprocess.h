// The fused preprocess op: stored pixels -> lookup table -> crop -> resize -> normalise -> NCHW.
//
// One call turns one image of stored values (uint8 / uint16 / int16 [rows, columns]) into
// one slot of a float32 or float16 [N, C, H, W] batch tensor, in a single pass over the
// input:
//
//   value(y, x)   = lut[clamp(stored(y, x) - lut_first_value, 0, lut_size - 1)]   (display, [0, 1])
//   content       = value over the crop rectangle (default: the whole image) resized to
//                   content_height x content_width (separable, see below)
//   out[c, y, x]  = (content or pad_value - mean[c]) / std[c]
//
// float32 pixels have no stored values to index a table with: they are taken as modality
// (or any linear) values and mapped by params.float_window, a LINEAR_EXACT window
// (PS3.3 C.11.2.1.3.2) evaluated per pixel in float32:
//
//   value(y, x)   = clamp((v - (center - width / 2)) / width, 0, 1), then 1 - value if invert
//
// NaN reads as 0 and +-infinity as 1 / 0, so no input makes the op write NaN; the binding
// refuses non-finite host arrays before they get here. The default window (center 0.5,
// width 1) passes display values in [0, 1] through unchanged.
//
// Resampling, per axis: when the axis shrinks, OpenCV INTER_AREA's coverage weights
// (cv::resize's computeResizeAreaTab, including its rule of ignoring boundary slivers of
// at most 1e-3 of a source pixel); when it grows, OpenCV INTER_LINEAR (pixel centres at
// i + 0.5, edges clamped); when the size is unchanged, a copy. The vertical pass runs first
// and the horizontal second, in float32, in the same order on every backend, so the CPU
// and CUDA results agree to rounding (bitwise where the compiler does not fuse multiply-adds).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/geometry.h"
#include "radedge/host_device.h"
#include "radedge/region.h"

// cudaStream_t is `CUstream_st*`; naming the struct keeps this header free of CUDA includes.
struct CUstream_st;

namespace radedge {

enum class PixelType : int { kUint8, kUint16, kInt16, kFloat32 };
enum class OutputType : int { kFloat32, kFloat16 };
enum class ResizeMode : int { kStretch, kLetterbox };

const char* output_type_name(OutputType type);
const char* pixel_type_name(PixelType type);
inline size_t pixel_type_bytes(PixelType type) {
  return type == PixelType::kUint8 ? 1 : (type == PixelType::kFloat32 ? 4 : 2);
}

// Stored values (or float32 values), [rows, columns], columns contiguous; row_stride counts
// elements (>= columns).
struct PixelsView {
  const void* data = nullptr;
  PixelType type = PixelType::kUint16;
  int64_t rows = 0;
  int64_t columns = 0;
  int64_t row_stride = 0;
};

// float32[size]; stored value v reads data[clamp(v - first_value, 0, size - 1)].
// first_value is a stored value, so it lies in the int32 range. Empty (size 0, no data)
// for float32 pixels, which params.float_window maps instead.
struct LutView {
  const float* data = nullptr;
  int64_t size = 0;
  int64_t first_value = 0;
};

// A C-contiguous [batch, channels, height, width] tensor; float16 is IEEE binary16 bits.
struct OutputView {
  void* data = nullptr;
  OutputType type = OutputType::kFloat32;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// The display mapping of float32 pixels (see the top of this file), in the pixels' units.
// center and width must be finite, width > 0.
struct FloatWindow {
  double center = 0.5;
  double width = 1.0;
  bool invert = false;  // 1 - value, for data where the largest values display darkest
};

// What the model expects; `out` must match it. mean / std hold one value (broadcast) or
// one per channel; pad_value is in the LUT's display domain, before normalisation.
// crop_*: the source rectangle that is resized into the content, in source pixels; width
// / height -1 reach the right / bottom edge, so the defaults are the whole image.
struct PreprocessParams {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;
  OutputType output_type = OutputType::kFloat32;
  ResizeMode resize = ResizeMode::kLetterbox;
  float pad_value = 0.0f;
  std::vector<float> mean{0.0f};
  std::vector<float> std{1.0f};
  int64_t crop_x = 0;
  int64_t crop_y = 0;
  int64_t crop_width = -1;
  int64_t crop_height = -1;
  FloatWindow float_window;
};

// Where the crop (default: the whole image) lands in a height x width model input. Letterbox:
// s = min(height / crop_height, width / crop_width), content = max(1, round(n * s)) with halves
// rounded up, evaluated exactly in integers; the content is centred (offsets rounded down).
// Stretch: the content is the whole input. Throws std::invalid_argument on a non-positive size
// or a crop that is not inside the image.
InputGeometry resize_geometry(int64_t source_rows, int64_t source_columns, int64_t height, int64_t width,
                              ResizeMode mode);
InputGeometry resize_geometry(int64_t source_rows, int64_t source_columns, const PixelRegion& crop, int64_t height,
                              int64_t width, ResizeMode mode);

// params' crop resolved against a rows x columns image (std::invalid_argument if it is
// empty or reaches outside).
PixelRegion resolve_crop(int64_t rows, int64_t columns, const PreprocessParams& params);

// The view of the crop rectangle of `pixels` (same row stride, data moved to its corner).
inline PixelsView crop_view(const PixelsView& pixels, const PixelRegion& crop) {
  PixelsView view = pixels;
  const int64_t stride = pixels.rows > 1 ? pixels.row_stride : pixels.columns;
  view.data = static_cast<const unsigned char*>(pixels.data) +
              (crop.y * stride + crop.x) * static_cast<int64_t>(pixel_type_bytes(pixels.type));
  view.rows = crop.height;
  view.columns = crop.width;
  view.row_stride = stride;
  return view;
}

// The one place where the op's arguments are checked, by every backend and the binding.
// Throws std::invalid_argument naming the argument, what arrived and what is expected.
void check_preprocess_args(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                           const PreprocessParams& params);

// Runs on the calling thread plus up to threads - 1 workers (0: default_thread_count());
// the result does not depend on the thread count. Writes only out[slot].
InputGeometry preprocess_cpu(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                             const PreprocessParams& params, int threads);

// One image of a batch: it is written to out[i], i its index in the list. Each item has
// its own params (crop, float window); all must describe `out`.
struct PreprocessItem {
  PixelsView pixels;
  LutView lut;
  PreprocessParams params;
};

// check_preprocess_args for every item against its slot; at least one item and at most
// out.batch (slots past the items are left untouched).
void check_preprocess_batch_args(const std::vector<PreprocessItem>& items, const OutputView& out);

// Every item into its slot, with the images' rows split across the threads as one pool
// of work; each slot is bitwise what preprocess_cpu writes for it.
std::vector<InputGeometry> preprocess_batch_cpu(const std::vector<PreprocessItem>& items, const OutputView& out,
                                                int threads);

// CUDA (kernels/cuda/preprocess.cu). Every pointer is device memory. Enqueues the op on
// `stream` and returns without waiting; `workspace` holds the resampling weights and
// must be at least preprocess_cuda_workspace_bytes(...) bytes, 256-byte aligned, and
// untouched until the op has run. Allocates nothing, so it can be captured in a CUDA
// graph. CUDA errors throw std::runtime_error naming the op and the CUDA error.
size_t preprocess_cuda_workspace_bytes(int64_t source_rows, int64_t source_columns, const PreprocessParams& params);
InputGeometry preprocess_cuda(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                              const PreprocessParams& params, void* workspace, size_t workspace_bytes,
                              CUstream_st* stream);

// The same op on host arrays, for tests and one-off use: allocates device memory, copies
// in, runs, waits, copies out[slot] back and frees. `out` is untouched if anything fails.
InputGeometry preprocess_cuda_host(const PixelsView& pixels, const LutView& lut, const OutputView& out,
                                   int64_t slot, const PreprocessParams& params);

// The batch on CUDA: one preprocess_cuda enqueue per item on `stream`, each with its own
// part of `workspace` (preprocess_batch_cuda_workspace_bytes in all). Allocation-free and
// enqueue-only like preprocess_cuda; the _host variant copies in and out as above.
size_t preprocess_batch_cuda_workspace_bytes(const std::vector<PreprocessItem>& items);
std::vector<InputGeometry> preprocess_batch_cuda(const std::vector<PreprocessItem>& items, const OutputView& out,
                                                 void* workspace, size_t workspace_bytes, CUstream_st* stream);
std::vector<InputGeometry> preprocess_batch_cuda_host(const std::vector<PreprocessItem>& items,
                                                      const OutputView& out);

namespace detail {

// The per-channel constants of a call, small enough to pass to a kernel by value.
struct Normalisation {
  float mean[3];
  float std[3];
  float pad[3];  // (pad_value - mean[c]) / std[c]
};
Normalisation make_normalisation(const PreprocessParams& params);

// params.float_window as the kernels evaluate it: value = clamp((v - low) / width, 0, 1),
// then 1 - value when invert. low is rounded to float once, here, for every backend.
struct FloatWindowConstants {
  float low;
  float width;
  bool invert;
};
FloatWindowConstants make_float_window(const PreprocessParams& params);

RADEDGE_HOST_DEVICE inline float float_window_value(const FloatWindowConstants& window, float v) {
#if defined(__CUDA_ARCH__)
  float t = __fdiv_rn(__fsub_rn(v, window.low), window.width);
#else
  float t = (v - window.low) / window.width;
#endif
  // Written so that NaN fails the first comparison and becomes 0.
  t = t > 0.0f ? t : 0.0f;
  t = t < 1.0f ? t : 1.0f;
  return window.invert ? 1.0f - t : t;
}

enum class AxisMode : int { kCopy, kArea, kLinear };

// How one axis of source_size pixels maps onto target_size pixels.
struct Axis {
  int64_t source_size;
  int64_t target_size;
  AxisMode mode;
  double scale;      // source / target, computed as OpenCV does (1 / (target / source))
  int64_t max_taps;  // bound on the number of source pixels one target pixel reads
};

inline Axis make_axis(int64_t source_size, int64_t target_size) {
  Axis axis{source_size, target_size, AxisMode::kCopy, 1.0, 1};
  if (target_size == source_size) return axis;
  axis.scale = 1.0 / (static_cast<double>(target_size) / static_cast<double>(source_size));
  if (target_size < source_size) {
    axis.mode = AxisMode::kArea;
    // A span of `scale` pixels touches at most floor(scale) + 2 of them.
    axis.max_taps = static_cast<int64_t>(std::floor(axis.scale)) + 2;
  } else {
    axis.mode = AxisMode::kLinear;
    axis.max_taps = 2;
  }
  return axis;
}

// The taps of target pixel `index`: source pixels first .. first + count - 1 with
// weights[0 .. count - 1] (weights holds axis.max_taps floats). Returns count (>= 1).
// Mirrors cv::resize: computeResizeAreaTab for kArea, the INTER_LINEAR coefficients for
// kLinear.
RADEDGE_HOST_DEVICE inline int64_t axis_taps(const Axis& axis, int64_t index, int64_t* first, float* weights) {
  const int64_t n = axis.source_size;
  if (axis.mode == AxisMode::kCopy) {
    *first = index;
    weights[0] = 1.0f;
    return 1;
  }
  if (axis.mode == AxisMode::kLinear) {
    float fraction = static_cast<float>(add_rn(mul_rn(static_cast<double>(index) + 0.5, axis.scale), -0.5));
    int64_t left = static_cast<int64_t>(floorf(fraction));
    fraction -= static_cast<float>(left);
    if (left < 0) {
      left = 0;
      fraction = 0.0f;
    }
    if (left >= n - 1) {
      left = n - 1;
      fraction = 0.0f;
    }
    *first = left;
    weights[0] = 1.0f - fraction;
    if (fraction == 0.0f) return 1;
    weights[1] = fraction;
    return 2;
  }
  const double start = mul_rn(static_cast<double>(index), axis.scale);
  const double stop = add_rn(start, axis.scale);
  const double span = fmin(axis.scale, static_cast<double>(n) - start);
  int64_t full_first = static_cast<int64_t>(ceil(start));
  int64_t last = static_cast<int64_t>(floor(stop));
  last = last < n - 1 ? last : n - 1;
  full_first = full_first < last ? full_first : last;
  int64_t count = 0;
  // The three parts mirror OpenCV's table; a sliver of <= 1e-3 pixel at either end is ignored.
  if (static_cast<double>(full_first) - start > 1e-3) {
    weights[count++] = static_cast<float>((static_cast<double>(full_first) - start) / span);
    *first = full_first - 1;
  } else {
    *first = full_first;
  }
  for (int64_t s = full_first; s < last; ++s) weights[count++] = static_cast<float>(1.0 / span);
  if (stop - static_cast<double>(last) > 1e-3) {
    weights[count++] = static_cast<float>(fmin(fmin(stop - static_cast<double>(last), 1.0), span) / span);
  }
  return count;
}

}  // namespace detail
}  // namespace radedge
