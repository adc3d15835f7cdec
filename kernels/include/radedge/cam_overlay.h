// CAM overlay: a class activation map over the model input, upsampled onto a grey display
// image, coloured through a 256-entry colour map and alpha-blended, in one pass.
//
// The display (uint8 [H, W]) shows exactly the source region that was resized into the
// content rectangle (the whole image, or its crop), so display pixel (u, v) has its centre
// at, per axis (x shown; y alike with rows, offset_y, content_height, input_height, h):
//
//   x_input = (v + 0.5) * (content_width / W) + offset_x
//   x_cam   = x_input * (w / input_width)                     (the CAM spans the whole input)
//
// and the CAM is sampled there bilinearly, cell centres at i + 0.5, edge cells clamped
// (cv2.resize INTER_LINEAR's rule). Positions and weights are computed in float64 and the
// weights rounded to float32; the sample is the vertical pair, then the horizontal pair,
// in float32 with every product and sum rounded separately (no fused multiply-add), the
// same on every backend:
//
//   row(i) = cam[y0, i] + wy * (cam[y1, i] - cam[y0, i])     value = row(x0) + wx * (row(x1) - row(x0))
//
// (this form keeps a constant CAM exactly constant, so rounding cannot make a flat map
// look structured after min-max normalisation)
//
// Then, with [low, high] either the minimum and maximum of `value` over the whole display
// (min-max) or fixed by the caller:
//
//   t      = clamp((value - low) / (high - low), 0, 1) in float32; 0 when high <= low (flat)
//   colour = colormap[floor(t * 255 + 0.5)]                    (RGB, uint8)
//   out    = grey (each channel)                                where t < floor
//            (grey * (255 - a) + colour * a + 127) / 255 in integers, a = round(alpha * 255)
//                                                               elsewhere
//
// The blend is the exactly rounded (g (255 - a) + c a) / 255, so it has no rounding
// ambiguity. Against a float64 evaluation of the same formulas, only the colour index can
// move by one, where t * 255 lies within float32 rounding of a half, and the floor test can
// flip, where t lies within float32 rounding of the floor.
#pragma once

#include <cstddef>
#include <cstdint>

#include "radedge/head_grid.h"

// cudaStream_t is `CUstream_st*`; naming the struct keeps this header free of CUDA includes.
struct CUstream_st;

namespace radedge {

enum class CamNormalise : int { kMinMax, kFixed };
enum class ColormapName : int { kTurbo, kJet };

// 256 RGB entries, index 0 for t = 0.
struct Colormap {
  uint8_t rgb[256][3];
};

// Turbo: Google's polynomial approximation of the Turbo colour map (Anton Mikhailov, 2019;
// GLSL approximation by Ruofei Du, Apache-2.0), evaluated in float64 at t = i / 255,
// clamped to [0, 1] and rounded to uint8; it follows the exact Turbo table (OpenCV's
// COLORMAP_TURBO) to 6 levels on average, 32 at worst (blue, at the dark end). Jet:
// MATLAB's jet ramps, each channel clamp(1.5 - |4t - k|, 0, 1) with k = 3, 2, 1 for red,
// green, blue, at t = i / 255, rounded to uint8; within one level of OpenCV's COLORMAP_JET.
const Colormap& builtin_colormap(ColormapName name);

// Largest CAM value magnitude (and fixed range bound) the op accepts, so that the
// difference of two values, and the range, stay finite in float32.
constexpr float kMaxCamMagnitude = 1e30f;

// One map, C-contiguous [height, width], over the whole model input.
struct CamView {
  const void* data = nullptr;
  MapType type = MapType::kFloat32;
  int64_t height = 0;
  int64_t width = 0;
};

// The grey display image, C-contiguous uint8 [rows, columns].
struct DisplayView {
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t columns = 0;
};

// The overlay, C-contiguous uint8 [rows, columns, 3], RGB.
struct OverlayView {
  uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t columns = 0;
};

// alpha: opacity of the colour, [0, 1], used as round(alpha * 255) / 255 (evaluated in
// float64, halves up). floor: normalised CAM values below it show the grey image only,
// [0, 1] (0: colour everywhere); the float32 t is compared with it exactly. low / high: the
// fixed range (finite, low < high, within kMaxCamMagnitude), unused for min-max. Only the input size and content rectangle of
// `geometry` are used; the rest is checked for consistency.
struct CamOverlayParams {
  InputGeometry geometry;
  CamNormalise normalise = CamNormalise::kMinMax;
  float low = 0.0f;
  float high = 1.0f;
  double alpha = 0.4;
  double floor = 0.0;
  Colormap colormap{};
};

// The range the normalisation used.
struct CamRange {
  float low;
  float high;
};

// The one place where the op's arguments are checked, by every backend and the binding.
// Throws std::invalid_argument naming the argument, what arrived and what is expected.
// Does not read the CAM values (see check_cam_finite).
void check_cam_overlay_args(const CamView& cam, const DisplayView& display, const OverlayView& out,
                            const CamOverlayParams& params);

// Throws std::invalid_argument naming the first value of a host-memory CAM that is NaN or
// beyond kMaxCamMagnitude.
void check_cam_finite(const CamView& cam, const char* op);

// Runs on the calling thread plus up to threads - 1 workers (0: default_thread_count());
// the result does not depend on the thread count. Refuses non-finite CAM values.
CamRange cam_overlay_cpu(const CamView& cam, const DisplayView& display, const OverlayView& out,
                         const CamOverlayParams& params, int threads);

// CUDA (kernels/cuda/cam_overlay.cu). Every pointer is device memory. Enqueues the op on
// `stream` and returns without waiting: a kernel filling the row and column taps, for
// min-max a kernel reducing the range of the samples, and the kernel writing the overlay.
// `workspace` must be at least cam_overlay_cuda_workspace_bytes(...) bytes, 256-byte
// aligned, and untouched until the op has run. Allocates nothing, so it can be captured in
// a CUDA graph. The CAM values are not checked on the device. The result is the CPU op's,
// bit for bit, where the host compiler does not fuse multiply-adds (x86-64).
size_t cam_overlay_cuda_workspace_bytes(const DisplayView& display);
void cam_overlay_cuda(const CamView& cam, const DisplayView& display, const OverlayView& out,
                      const CamOverlayParams& params, void* workspace, size_t workspace_bytes, CUstream_st* stream);

// The same op on host arrays, for tests and one-off use: checks the CAM is finite,
// allocates device memory, copies in, runs, waits, copies the overlay (and the range) back
// and frees. `out` is untouched if anything fails.
CamRange cam_overlay_cuda_host(const CamView& cam, const DisplayView& display, const OverlayView& out,
                               const CamOverlayParams& params);

namespace detail {

// Where one display row or column samples the CAM: between cells first and second
// (second = first, weight 0, at a clamped edge), `weight` of the way to second.
struct CamTap {
  int32_t first;
  int32_t second;
  float weight;
};

// The per-call constants, small enough to pass to a kernel by value.
struct CamConstants {
  double content_per_display_x;  // content_width / W
  double content_per_display_y;
  double offset_x, offset_y;
  double cam_per_input_x;  // w / input_width
  double cam_per_input_y;
  int32_t alpha255;  // round(alpha * 255)
  float floor;       // the smallest float >= params.floor, so that t >= floor is exact
  bool min_max;
  float low, high;  // fixed range
  Colormap colormap;
};
CamConstants make_cam_constants(const CamView& cam, const DisplayView& display, const CamOverlayParams& params);

RADEDGE_HOST_DEVICE inline CamTap cam_tap(int64_t index, double content_per_display, double offset,
                                          double cam_per_input, int64_t cam_size) {
  const double input = add_rn(mul_rn(static_cast<double>(index) + 0.5, content_per_display), offset);
  const double position = add_rn(mul_rn(input, cam_per_input), -0.5);
  double left = floor(position);
  double fraction = position - left;
  if (left < 0.0) {
    left = 0.0;
    fraction = 0.0;
  }
  if (left >= static_cast<double>(cam_size - 1)) {
    left = static_cast<double>(cam_size - 1);
    fraction = 0.0;
  }
  CamTap tap;
  tap.first = static_cast<int32_t>(left);
  tap.second = tap.first + 1 < cam_size ? tap.first + 1 : tap.first;
  tap.weight = static_cast<float>(fraction);
  return tap;
}

RADEDGE_HOST_DEVICE inline float cam_lerp(float a, float b, float weight) {
  return add_rn(a, mul_rn(weight, add_rn(b, -a)));
}

// t of the header comment where high > low. Two selects without branches, which CPU
// compilers turn into vector max / min.
RADEDGE_HOST_DEVICE inline float cam_normalised_in_range(float value, float low, float high) {
  const float t = add_rn(value, -low) / add_rn(high, -low);
  const float above_zero = t > 0.0f ? t : 0.0f;
  return above_zero < 1.0f ? above_zero : 1.0f;
}

// t of the header comment.
RADEDGE_HOST_DEVICE inline float cam_normalised(float value, float low, float high) {
  return high > low ? cam_normalised_in_range(value, low, high) : 0.0f;
}

RADEDGE_HOST_DEVICE inline int cam_colour_index(float t) {
  return static_cast<int>(add_rn(mul_rn(t, 255.0f), 0.5f));
}

// (grey * (255 - a) + colour * a + 127) / 255: round((g (255 - a) + c a) / 255), exact,
// since an integer over 255 is never halfway between two integers.
RADEDGE_HOST_DEVICE inline uint8_t cam_blend(int grey, int colour, int alpha255) {
  return static_cast<uint8_t>((grey * (255 - alpha255) + colour * alpha255 + 127) / 255);
}

// Ordered uint32 keys of floats, for atomicMin / atomicMax on the device.
RADEDGE_HOST_DEVICE inline uint32_t float_order_key(uint32_t bits) {
  return bits ^ ((bits & 0x80000000u) ? 0xffffffffu : 0x80000000u);
}
RADEDGE_HOST_DEVICE inline uint32_t float_bits_from_key(uint32_t key) {
  return key ^ ((key & 0x80000000u) ? 0x80000000u : 0xffffffffu);
}

}  // namespace detail
}  // namespace radedge
