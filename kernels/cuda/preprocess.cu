// CUDA implementation of the fused preprocess op (see radedge/preprocess.h).
//
// Two small kernels fill the workspace with the per-row and per-column taps (the same
// detail::axis_taps the CPU uses, so the weights are the same bits); the main kernel then
// computes one output pixel per thread for every channel, summing the vertical taps of
// each horizontal tap in the CPU's order with non-fused float products and sums. A crop
// only moves the pixels pointer to the crop's corner and shrinks the view: the kernels
// never see the rest of the image. A batch is one such enqueue per image on the stream.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "radedge/cuda_util.h"
#include "radedge/preprocess.h"

namespace radedge {
namespace {

constexpr const char* kOp = "preprocess";

void check_cuda(cudaError_t status, const char* step) { cuda::check(status, kOp, step); }



// Byte offsets of the tap tables inside the workspace.
struct WorkspaceLayout {
  size_t row_first, row_count, row_weights;
  size_t column_first, column_count, column_weights;
  size_t total;
};

WorkspaceLayout workspace_layout(const detail::Axis& rows, const detail::Axis& columns) {
  WorkspaceLayout layout{};
  size_t at = 0;
  const auto take = [&at](size_t bytes) {
    const size_t offset = at;
    at += cuda::align_workspace(bytes);
    return offset;
  };
  layout.row_first = take(sizeof(int32_t) * static_cast<size_t>(rows.target_size));
  layout.row_count = take(sizeof(int32_t) * static_cast<size_t>(rows.target_size));
  layout.row_weights = take(sizeof(float) * static_cast<size_t>(rows.target_size * rows.max_taps));
  layout.column_first = take(sizeof(int32_t) * static_cast<size_t>(columns.target_size));
  layout.column_count = take(sizeof(int32_t) * static_cast<size_t>(columns.target_size));
  layout.column_weights = take(sizeof(float) * static_cast<size_t>(columns.target_size * columns.max_taps));
  layout.total = at;
  return layout;
}

struct TapsView {
  const int32_t* first;
  const int32_t* count;
  const float* weights;  // [target][max_taps]
  int64_t max_taps;
};

__global__ void axis_taps_kernel(detail::Axis axis, int32_t* first, int32_t* count, float* weights) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= axis.target_size) return;
  int64_t first_source = 0;
  const int64_t taps = detail::axis_taps(axis, index, &first_source, weights + index * axis.max_taps);
  first[index] = static_cast<int32_t>(first_source);
  count[index] = static_cast<int32_t>(taps);
}

__device__ inline void store(float* dst, float value) { *dst = value; }
__device__ inline void store(uint16_t* dst, float value) { *dst = __half_as_ushort(__float2half_rn(value)); }

// Display value of one pixel: the table for stored values, the float window for float32.
template <typename Pixel>
__device__ inline float display_value(Pixel stored, const float* __restrict__ lut, int64_t lut_size,
                                      int64_t lut_first_value, const detail::FloatWindowConstants& window) {
  if constexpr (std::is_same_v<Pixel, float>) {
    return detail::float_window_value(window, stored);
  } else {
    int64_t index = static_cast<int64_t>(stored) - lut_first_value;
    index = index < 0 ? 0 : (index >= lut_size ? lut_size - 1 : index);
    return __ldg(lut + index);
  }
}

// `pixels` points at the crop's top-left pixel; g's content is the crop resized.
template <typename Pixel, typename Out>
__global__ void preprocess_kernel(const Pixel* __restrict__ pixels, int64_t row_stride, const float* __restrict__ lut,
                                  int64_t lut_size, int64_t lut_first_value, detail::FloatWindowConstants window,
                                  Out* __restrict__ out, int64_t channels, int64_t height, int64_t width,
                                  InputGeometry g, TapsView row_taps, TapsView column_taps,
                                  detail::Normalisation norm) {
  const int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x >= width) return;
  const int64_t plane = height * width;
  for (int64_t y = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; y < height;
       y += static_cast<int64_t>(gridDim.y) * blockDim.y) {
    Out* dst = out + y * width + x;
    const int64_t content_y = y - g.offset_y, content_x = x - g.offset_x;
    if (content_y < 0 || content_y >= g.content_height || content_x < 0 || content_x >= g.content_width) {
      for (int64_t c = 0; c < channels; ++c) store(dst + c * plane, norm.pad[c]);
      continue;
    }
    const int64_t first_row = row_taps.first[content_y];
    const int32_t rows = row_taps.count[content_y];
    const float* wy = row_taps.weights + content_y * row_taps.max_taps;
    const int64_t first_column = column_taps.first[content_x];
    const int32_t columns = column_taps.count[content_x];
    const float* wx = column_taps.weights + content_x * column_taps.max_taps;

    float value = 0.0f;
    for (int32_t k = 0; k < columns; ++k) {
      const Pixel* source = pixels + first_row * row_stride + first_column + k;
      float vertical = 0.0f;
      for (int32_t j = 0; j < rows; ++j) {
        const float display = display_value(source[j * row_stride], lut, lut_size, lut_first_value, window);
        const float term = detail::mul_rn(wy[j], display);
        vertical = j == 0 ? term : detail::add_rn(vertical, term);
      }
      const float term = detail::mul_rn(wx[k], vertical);
      value = k == 0 ? term : detail::add_rn(value, term);
    }
    for (int64_t c = 0; c < channels; ++c) {
      store(dst + c * plane, __fdiv_rn(__fsub_rn(value, norm.mean[c]), norm.std[c]));
    }
  }
}

// `crop` is the view of the crop rectangle (crop_view), whose size g's content resizes.
template <typename Pixel, typename Out>
void launch(const PixelsView& crop, const LutView& lut, const detail::FloatWindowConstants& window,
            const OutputView& out, int64_t slot, const InputGeometry& g, const TapsView& row_taps,
            const TapsView& column_taps, const detail::Normalisation& norm, cudaStream_t stream) {
  const dim3 block(32, 8);
  const int64_t blocks_y = (out.height + block.y - 1) / block.y;
  const dim3 grid(static_cast<unsigned>((out.width + block.x - 1) / block.x),
                  static_cast<unsigned>(blocks_y < 65535 ? blocks_y : 65535));
  Out* slot_base = static_cast<Out*>(out.data) + slot * out.channels * out.height * out.width;
  preprocess_kernel<Pixel, Out><<<grid, block, 0, stream>>>(
      static_cast<const Pixel*>(crop.data), crop.row_stride, lut.data, lut.size, lut.first_value, window, slot_base,
      out.channels, out.height, out.width, g, row_taps, column_taps, norm);
}

template <typename Pixel>
void launch_for_output(const PixelsView& crop, const LutView& lut, const detail::FloatWindowConstants& window,
                       const OutputView& out, int64_t slot, const InputGeometry& g, const TapsView& row_taps,
                       const TapsView& column_taps, const detail::Normalisation& norm, cudaStream_t stream) {
  if (out.type == OutputType::kFloat32) {
    launch<Pixel, float>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
  } else {
    launch<Pixel, uint16_t>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
  }
}

size_t output_bytes(OutputType type) { return type == OutputType::kFloat32 ? 4 : 2; }

InputGeometry geometry_of(int64_t source_rows, int64_t source_columns, const PreprocessParams& params) {
  return resize_geometry(source_rows, source_columns, resolve_crop(source_rows, source_columns, params),
                         params.height, params.width, params.resize);
}

WorkspaceLayout workspace_layout(const InputGeometry& g) {
  return workspace_layout(detail::make_axis(g.crop_height, g.content_height),
                          detail::make_axis(g.crop_width, g.content_width));
}

}  // namespace

size_t preprocess_cuda_workspace_bytes(int64_t source_rows, int64_t source_columns, const PreprocessParams& params) {
  return workspace_layout(geometry_of(source_rows, source_columns, params)).total;
}

InputGeometry preprocess_cuda(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                              const PreprocessParams& params, void* workspace, size_t workspace_bytes,
                              CUstream_st* stream) {
  check_preprocess_args(pixels, lut, out, slot, params);
  const InputGeometry g = geometry_of(pixels.rows, pixels.columns, params);
  const detail::Axis row_axis = detail::make_axis(g.crop_height, g.content_height);
  const detail::Axis column_axis = detail::make_axis(g.crop_width, g.content_width);
  const WorkspaceLayout layout = workspace_layout(row_axis, column_axis);
  cuda::check_workspace("preprocess", workspace, workspace_bytes, layout.total);
  char* base = static_cast<char*>(workspace);
  int32_t* row_first = reinterpret_cast<int32_t*>(base + layout.row_first);
  int32_t* row_count = reinterpret_cast<int32_t*>(base + layout.row_count);
  float* row_weights = reinterpret_cast<float*>(base + layout.row_weights);
  int32_t* column_first = reinterpret_cast<int32_t*>(base + layout.column_first);
  int32_t* column_count = reinterpret_cast<int32_t*>(base + layout.column_count);
  float* column_weights = reinterpret_cast<float*>(base + layout.column_weights);

  constexpr unsigned kTapThreads = 128;
  axis_taps_kernel<<<static_cast<unsigned>((row_axis.target_size + kTapThreads - 1) / kTapThreads), kTapThreads, 0,
                     stream>>>(row_axis, row_first, row_count, row_weights);
  axis_taps_kernel<<<static_cast<unsigned>((column_axis.target_size + kTapThreads - 1) / kTapThreads), kTapThreads,
                     0, stream>>>(column_axis, column_first, column_count, column_weights);

  const TapsView row_taps{row_first, row_count, row_weights, row_axis.max_taps};
  const TapsView column_taps{column_first, column_count, column_weights, column_axis.max_taps};
  const detail::Normalisation norm = detail::make_normalisation(params);
  const detail::FloatWindowConstants window = detail::make_float_window(params);
  const PixelsView crop = crop_view(pixels, PixelRegion{g.crop_x, g.crop_y, g.crop_width, g.crop_height});
  switch (pixels.type) {
    case PixelType::kUint8:
      launch_for_output<uint8_t>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
      break;
    case PixelType::kUint16:
      launch_for_output<uint16_t>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
      break;
    case PixelType::kInt16:
      launch_for_output<int16_t>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
      break;
    case PixelType::kFloat32:
      launch_for_output<float>(crop, lut, window, out, slot, g, row_taps, column_taps, norm, stream);
      break;
  }
  check_cuda(cudaGetLastError(), "kernel launch");
  return g;
}

namespace {

// Device copies of host images and tables, owned for one _host call; views() gives the
// items to run with, pointing at them.
class DeviceItems {
 public:
  DeviceItems(const std::vector<PreprocessItem>& items, cudaStream_t stream) : items_(items) {
    for (PreprocessItem& item : items_) {
      const PixelsView& host = item.pixels;
      const size_t pixel_size = pixel_type_bytes(host.type);
      const size_t row_bytes = static_cast<size_t>(host.columns) * pixel_size;
      const int64_t host_stride = host.rows > 1 ? host.row_stride : host.columns;
      buffers_.emplace_back(row_bytes * static_cast<size_t>(host.rows), kOp);
      check_cuda(cudaMemcpy2DAsync(buffers_.back().get(), row_bytes, host.data,
                                   static_cast<size_t>(host_stride) * pixel_size, row_bytes,
                                   static_cast<size_t>(host.rows), cudaMemcpyHostToDevice, stream),
                 "copying pixels to the device");
      item.pixels.data = buffers_.back().get();
      item.pixels.row_stride = host.columns;
      // float32 pixels come with no table.
      if (item.lut.size > 0) {
        const size_t lut_bytes = sizeof(float) * static_cast<size_t>(item.lut.size);
        buffers_.emplace_back(lut_bytes, kOp);
        check_cuda(cudaMemcpyAsync(buffers_.back().get(), item.lut.data, lut_bytes, cudaMemcpyHostToDevice, stream),
                   "copying the lut to the device");
        item.lut.data = static_cast<const float*>(buffers_.back().get());
      }
    }
  }
  const std::vector<PreprocessItem>& views() const { return items_; }

 private:
  std::vector<PreprocessItem> items_;
  std::vector<cuda::DeviceBuffer> buffers_;
};

// Runs `items` into a device copy of out[0 .. items.size() - 1], waits, and only then
// writes those slots of the host `out`.
std::vector<InputGeometry> run_on_device(const std::vector<PreprocessItem>& items, const OutputView& out) {
  cuda::require_device(kOp);
  const size_t slot_bytes = static_cast<size_t>(out.channels * out.height * out.width) * output_bytes(out.type);
  const size_t out_bytes = slot_bytes * items.size();
  const size_t workspace_bytes = preprocess_batch_cuda_workspace_bytes(items);

  cuda::Stream stream(kOp);
  const DeviceItems device_items(items, stream.get());
  cuda::DeviceBuffer device_out(out_bytes, kOp);
  cuda::DeviceBuffer workspace(workspace_bytes, kOp);
  OutputView device_out_view = out;
  device_out_view.data = device_out.get();
  device_out_view.batch = static_cast<int64_t>(items.size());

  const std::vector<InputGeometry> geometries =
      preprocess_batch_cuda(device_items.views(), device_out_view, workspace.get(), workspace_bytes, stream.get());

  // Staged on the host so that `out` is written only once everything has succeeded.
  std::vector<unsigned char> staged(out_bytes);
  check_cuda(cudaMemcpyAsync(staged.data(), device_out.get(), out_bytes, cudaMemcpyDeviceToHost, stream.get()),
             "copying the result to the host");
  check_cuda(cudaStreamSynchronize(stream.get()), "running the preprocess kernel");
  std::memcpy(out.data, staged.data(), out_bytes);
  return geometries;
}

}  // namespace

InputGeometry preprocess_cuda_host(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                                   const PreprocessParams& params) {
  check_preprocess_args(pixels, lut, out, slot, params);
  const size_t slot_bytes = static_cast<size_t>(out.channels * out.height * out.width) * output_bytes(out.type);
  OutputView slot_view = out;
  slot_view.data = static_cast<unsigned char*>(out.data) + static_cast<size_t>(slot) * slot_bytes;
  slot_view.batch = 1;
  return run_on_device({PreprocessItem{pixels, lut, params}}, slot_view).front();
}

size_t preprocess_batch_cuda_workspace_bytes(const std::vector<PreprocessItem>& items) {
  size_t total = 0;
  for (const PreprocessItem& item : items) {
    total += preprocess_cuda_workspace_bytes(item.pixels.rows, item.pixels.columns, item.params);
  }
  return total;
}

std::vector<InputGeometry> preprocess_batch_cuda(const std::vector<PreprocessItem>& items, const OutputView& out,
                                                 void* workspace, size_t workspace_bytes, CUstream_st* stream) {
  check_preprocess_batch_args(items, out);
  const size_t needed = preprocess_batch_cuda_workspace_bytes(items);
  cuda::check_workspace("preprocess_batch", workspace, workspace_bytes, needed);
  std::vector<InputGeometry> geometries;
  geometries.reserve(items.size());
  // Each image's part of the workspace is a whole number of 256-byte blocks, so every
  // part stays aligned; the parts do not overlap, so the enqueued ops never share taps.
  char* part = static_cast<char*>(workspace);
  for (size_t i = 0; i < items.size(); ++i) {
    const PreprocessItem& item = items[i];
    const size_t part_bytes = preprocess_cuda_workspace_bytes(item.pixels.rows, item.pixels.columns, item.params);
    geometries.push_back(preprocess_cuda(item.pixels, item.lut, out, static_cast<int64_t>(i), item.params, part,
                                         part_bytes, stream));
    part += part_bytes;
  }
  return geometries;
}

std::vector<InputGeometry> preprocess_batch_cuda_host(const std::vector<PreprocessItem>& items,
                                                      const OutputView& out) {
  check_preprocess_batch_args(items, out);
  return run_on_device(items, out);
}

}  // namespace radedge
