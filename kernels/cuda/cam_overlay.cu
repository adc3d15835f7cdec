// CUDA implementation of the CAM overlay op (see radedge/cam_overlay.h).
//
// A small kernel fills the row and column taps (the CPU's detail::cam_tap, so the same
// bits); for min-max normalisation a reduction kernel folds every sample into two ordered
// integer keys with atomicMin / atomicMax (exact, so the order of the atomics does not
// matter); the overlay kernel then computes one display pixel per thread with the CPU's
// own non-fused float32 arithmetic and integer blend.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/cam_overlay.h"
#include "radedge/cuda_util.h"

namespace radedge {
namespace {

constexpr const char* kOp = "cam_overlay";

void check_cuda(cudaError_t status, const char* step) { cuda::check(status, kOp, step); }



// Byte offsets inside the workspace.
struct WorkspaceLayout {
  size_t row_taps, column_taps, range_keys, total;
};

WorkspaceLayout workspace_layout(const DisplayView& display) {
  WorkspaceLayout layout{};
  layout.row_taps = 0;
  layout.column_taps = cuda::align_workspace(sizeof(detail::CamTap) * static_cast<size_t>(display.rows));
  layout.range_keys = layout.column_taps + cuda::align_workspace(sizeof(detail::CamTap) * static_cast<size_t>(display.columns));
  layout.total = layout.range_keys + cuda::align_workspace(2 * sizeof(uint32_t));
  return layout;
}

__device__ inline float load_value(const float* values, int64_t i) { return __ldg(values + i); }
__device__ inline float load_value(const uint16_t* values, int64_t i) {
  return __half2float(__ushort_as_half(__ldg(values + i)));
}

// The CPU's sample_row for one pixel: the vertical pair of each of the two columns, then
// the horizontal pair.
template <typename T>
__device__ inline float cam_sample(const T* cam, int64_t cam_width, const detail::CamTap& row,
                                   const detail::CamTap& column) {
  const float left = detail::cam_lerp(load_value(cam, row.first * cam_width + column.first),
                                      load_value(cam, row.second * cam_width + column.first), row.weight);
  const float right = detail::cam_lerp(load_value(cam, row.first * cam_width + column.second),
                                       load_value(cam, row.second * cam_width + column.second), row.weight);
  return detail::cam_lerp(left, right, column.weight);
}

__global__ void cam_taps_kernel(int64_t count, double content_per_display, double offset, double cam_per_input,
                                int64_t cam_size, detail::CamTap* taps) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= count) return;
  taps[index] = detail::cam_tap(index, content_per_display, offset, cam_per_input, cam_size);
}

__global__ void init_range_kernel(uint32_t* keys) {
  keys[0] = 0xffffffffu;  // the key of the largest float: atomicMin lowers it
  keys[1] = 0u;           // the key of the smallest: atomicMax raises it
}

constexpr unsigned kRangeThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kRangeThreads)
    cam_range_kernel(const T* __restrict__ cam, int64_t cam_width, const detail::CamTap* __restrict__ row_taps,
                     const detail::CamTap* __restrict__ column_taps, int64_t rows, int64_t columns,
                     uint32_t* __restrict__ keys) {
  float low = __int_as_float(0x7f800000), high = __int_as_float(static_cast<int>(0xff800000u));
  const int64_t total = rows * columns;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float sample = cam_sample(cam, cam_width, row_taps[i / columns], column_taps[i % columns]);
    low = fminf(low, sample);
    high = fmaxf(high, sample);
  }
  // Every thread of the block gets here (no early return), so full-mask shuffles are safe.
  for (int offset = 16; offset > 0; offset >>= 1) {
    low = fminf(low, __shfl_xor_sync(0xffffffffu, low, offset));
    high = fmaxf(high, __shfl_xor_sync(0xffffffffu, high, offset));
  }
  if ((threadIdx.x & 31u) == 0) {
    atomicMin(keys, detail::float_order_key(__float_as_uint(low)));
    atomicMax(keys + 1, detail::float_order_key(__float_as_uint(high)));
  }
}

template <typename T>
__global__ void cam_overlay_kernel(const T* __restrict__ cam, int64_t cam_width,
                                   const detail::CamTap* __restrict__ row_taps,
                                   const detail::CamTap* __restrict__ column_taps, const uint8_t* __restrict__ display,
                                   uint8_t* __restrict__ out, int64_t rows, int64_t columns,
                                   const uint32_t* __restrict__ range_keys, detail::CamConstants k) {
  // The colour map in shared memory: indexing the kernel parameter by a computed index
  // could make the compiler copy it to per-thread local memory.
  __shared__ uint8_t colours[256][3];
  for (unsigned i = threadIdx.y * blockDim.x + threadIdx.x; i < 256 * 3; i += blockDim.x * blockDim.y) {
    colours[i / 3][i % 3] = k.colormap.rgb[i / 3][i % 3];
  }
  __syncthreads();
  const int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x >= columns) return;
  float low = k.low, high = k.high;
  if (k.min_max) {
    low = __uint_as_float(detail::float_bits_from_key(range_keys[0]));
    high = __uint_as_float(detail::float_bits_from_key(range_keys[1]));
  }
  const detail::CamTap column = column_taps[x];
  for (int64_t y = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; y < rows;
       y += static_cast<int64_t>(gridDim.y) * blockDim.y) {
    const float t = detail::cam_normalised(cam_sample(cam, cam_width, row_taps[y], column), low, high);
    const int grey = display[y * columns + x];
    uint8_t* pixel = out + (y * columns + x) * 3;
    if (t >= k.floor) {
      const uint8_t* colour = colours[detail::cam_colour_index(t)];
      pixel[0] = detail::cam_blend(grey, colour[0], k.alpha255);
      pixel[1] = detail::cam_blend(grey, colour[1], k.alpha255);
      pixel[2] = detail::cam_blend(grey, colour[2], k.alpha255);
    } else {
      pixel[0] = pixel[1] = pixel[2] = static_cast<uint8_t>(grey);
    }
  }
}

template <typename T>
void launch(const CamView& cam, const DisplayView& display, const OverlayView& out, const detail::CamConstants& k,
            const detail::CamTap* row_taps, const detail::CamTap* column_taps, uint32_t* range_keys,
            cudaStream_t stream) {
  const T* values = static_cast<const T*>(cam.data);
  if (k.min_max) {
    init_range_kernel<<<1, 1, 0, stream>>>(range_keys);
    const int64_t total = display.rows * display.columns;
    const int64_t blocks = (total + kRangeThreads - 1) / kRangeThreads;
    cam_range_kernel<T><<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), kRangeThreads, 0, stream>>>(
        values, cam.width, row_taps, column_taps, display.rows, display.columns, range_keys);
  }
  const dim3 block(32, 8);
  const int64_t blocks_y = (display.rows + block.y - 1) / block.y;
  const dim3 grid(static_cast<unsigned>((display.columns + block.x - 1) / block.x),
                  static_cast<unsigned>(blocks_y < 65535 ? blocks_y : 65535));
  cam_overlay_kernel<T><<<grid, block, 0, stream>>>(values, cam.width, row_taps, column_taps, display.data, out.data,
                                                     display.rows, display.columns, range_keys, k);
}

size_t map_bytes(MapType type) { return type == MapType::kFloat32 ? 4 : 2; }

}  // namespace

size_t cam_overlay_cuda_workspace_bytes(const DisplayView& display) {
  if (display.rows < 1 || display.columns < 1 || display.rows > kMaxGridSize || display.columns > kMaxGridSize) {
    throw std::invalid_argument("cam_overlay: display must be [H, W] with 1 to " + std::to_string(kMaxGridSize) +
                                " pixels on each side; got [" + std::to_string(display.rows) + ", " +
                                std::to_string(display.columns) + "]");
  }
  return workspace_layout(display).total;
}

void cam_overlay_cuda(const CamView& cam, const DisplayView& display, const OverlayView& out,
                      const CamOverlayParams& params, void* workspace, size_t workspace_bytes, CUstream_st* stream) {
  check_cam_overlay_args(cam, display, out, params);
  const WorkspaceLayout layout = workspace_layout(display);
  cuda::check_workspace("cam_overlay", workspace, workspace_bytes, layout.total);
  char* base = static_cast<char*>(workspace);
  detail::CamTap* row_taps = reinterpret_cast<detail::CamTap*>(base + layout.row_taps);
  detail::CamTap* column_taps = reinterpret_cast<detail::CamTap*>(base + layout.column_taps);
  uint32_t* range_keys = reinterpret_cast<uint32_t*>(base + layout.range_keys);
  const detail::CamConstants k = detail::make_cam_constants(cam, display, params);

  constexpr unsigned kTapThreads = 128;
  cam_taps_kernel<<<static_cast<unsigned>((display.rows + kTapThreads - 1) / kTapThreads), kTapThreads, 0, stream>>>(
      display.rows, k.content_per_display_y, k.offset_y, k.cam_per_input_y, cam.height, row_taps);
  cam_taps_kernel<<<static_cast<unsigned>((display.columns + kTapThreads - 1) / kTapThreads), kTapThreads, 0,
                    stream>>>(display.columns, k.content_per_display_x, k.offset_x, k.cam_per_input_x, cam.width,
                              column_taps);
  if (cam.type == MapType::kFloat32) {
    launch<float>(cam, display, out, k, row_taps, column_taps, range_keys, stream);
  } else {
    launch<uint16_t>(cam, display, out, k, row_taps, column_taps, range_keys, stream);
  }
  check_cuda(cudaGetLastError(), "kernel launch");
}

CamRange cam_overlay_cuda_host(const CamView& cam, const DisplayView& display, const OverlayView& out,
                               const CamOverlayParams& params) {
  check_cam_overlay_args(cam, display, out, params);
  check_cam_finite(cam, kOp);
  cuda::require_device(kOp);

  const size_t cam_bytes = static_cast<size_t>(cam.height * cam.width) * map_bytes(cam.type);
  const size_t display_bytes = static_cast<size_t>(display.rows * display.columns);
  const size_t out_bytes = 3 * display_bytes;
  const size_t workspace_bytes = cam_overlay_cuda_workspace_bytes(display);

  cuda::Stream stream(kOp);
  cuda::DeviceBuffer device_cam(cam_bytes, kOp);
  cuda::DeviceBuffer device_display(display_bytes, kOp);
  cuda::DeviceBuffer device_out(out_bytes, kOp);
  cuda::DeviceBuffer workspace(workspace_bytes, kOp);

  check_cuda(cudaMemcpyAsync(device_cam.get(), cam.data, cam_bytes, cudaMemcpyHostToDevice, stream.get()),
             "copying the cam to the device");
  check_cuda(cudaMemcpyAsync(device_display.get(), display.data, display_bytes, cudaMemcpyHostToDevice, stream.get()),
             "copying the display to the device");

  CamView device_cam_view = cam;
  device_cam_view.data = device_cam.get();
  DisplayView device_display_view = display;
  device_display_view.data = static_cast<const uint8_t*>(device_display.get());
  OverlayView device_out_view = out;
  device_out_view.data = static_cast<uint8_t*>(device_out.get());

  cam_overlay_cuda(device_cam_view, device_display_view, device_out_view, params, workspace.get(), workspace_bytes,
                   stream.get());

  // Staged on the host so that `out` is written only once everything has succeeded.
  std::vector<uint8_t> staged(out_bytes);
  uint32_t keys[2] = {0, 0};
  check_cuda(cudaMemcpyAsync(staged.data(), device_out.get(), out_bytes, cudaMemcpyDeviceToHost, stream.get()),
             "copying the overlay to the host");
  if (params.normalise == CamNormalise::kMinMax) {
    check_cuda(cudaMemcpyAsync(keys, static_cast<char*>(workspace.get()) + workspace_layout(display).range_keys,
                               sizeof keys, cudaMemcpyDeviceToHost, stream.get()),
               "copying the range to the host");
  }
  check_cuda(cudaStreamSynchronize(stream.get()), "running the cam overlay kernels");
  std::memcpy(out.data, staged.data(), out_bytes);

  CamRange range{params.low, params.high};
  if (params.normalise == CamNormalise::kMinMax) {
    const uint32_t low_bits = detail::float_bits_from_key(keys[0]);
    const uint32_t high_bits = detail::float_bits_from_key(keys[1]);
    std::memcpy(&range.low, &low_bits, sizeof range.low);
    std::memcpy(&range.high, &high_bits, sizeof range.high);
  }
  return range;
}

}  // namespace radedge
