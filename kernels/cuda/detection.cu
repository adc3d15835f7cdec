// CUDA implementation of the detection ops (see radedge/detection.h).
//
// Five steps on one stream, every buffer in the caller's workspace:
//   1. keys: one thread per (image, flat candidate) reads the score (detail::sigmoid and
//      friends, the CPU's arithmetic), and writes a 64-bit sort key
//        image | ~score (32 bits, descending order) | flat index
//      for a candidate, or the image's largest key for anything else. Counts per image
//      by atomicAdd; refused values set the image's flag.
//   2. sort: one cub::DeviceRadixSort over all keys, on only the bits in use. The image
//      field keeps every image in its own range, each range starts with its candidates in
//      (score desc, flat index asc) order: the order of radedge/detection.h, with no ties.
//   3. gather: the first top_k candidates of each image get their box, area and class.
//   4. NMS, torchvision's bitmask scheme: a block per (row block, column block) of 64
//      candidates writes, per row, the 64-bit mask of later candidates it suppresses
//      (detail::iou_exceeds and a class test); then one block per image sweeps the rows in
//      order, keeping a candidate unless an earlier kept one's mask has its bit, and stops
//      at max_detections.
//   5. write: kept candidates mapped to the source image into the fixed slots, the rest
//      zeroed, valid[n] = kept count, or -1 for an image with refused values.
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "radedge/cuda_util.h"
#include "radedge/detection.h"

namespace radedge {
namespace {

constexpr int64_t kMaskBits = 64;      // candidates per NMS mask word and per mask block
constexpr unsigned kThreads = 256;     // block size of the 1-D kernels
constexpr unsigned kSweepThreads = 256;


unsigned blocks_for(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < (int64_t{1} << 20) ? (blocks > 0 ? blocks : 1) : (int64_t{1} << 20));
}

int bit_width(uint64_t value) {
  int bits = 0;
  while (value) {
    ++bits;
    value >>= 1;
  }
  return bits;
}

// Bits of the sort key: [image | descending score | flat index]. batch * per_image <=
// 2^31 (checked) keeps image_bits + index_bits <= 32, so the key fits in 64 bits.
struct KeyLayout {
  int index_bits;
  int end_bit;
};

KeyLayout key_layout(int64_t batch, int64_t per_image) {
  const int index_bits = bit_width(static_cast<uint64_t>(per_image - 1)) > 0
                             ? bit_width(static_cast<uint64_t>(per_image - 1))
                             : 1;
  const int image_bits = bit_width(static_cast<uint64_t>(batch - 1));
  return KeyLayout{index_bits, image_bits + 32 + index_bits};
}

// Sizes of one call: batch images, per_image flat candidates, top_k of them to NMS.
struct Shape {
  int64_t batch, per_image, top_k, max_detections;
  int64_t col_blocks() const { return (top_k + kMaskBits - 1) / kMaskBits; }
};

// Byte offsets of the buffers inside the workspace.
struct Layout {
  size_t counts, refused, keys_in, keys_out, sort_temp, sort_temp_bytes;
  size_t boxes, areas, scores, labels, flats, mask, keep, keep_counts;
  size_t total;
};

Layout workspace_layout(const Shape& s, const KeyLayout& keys, const char* op) {
  Layout layout{};
  size_t at = 0;
  const auto take = [&at](size_t bytes) {
    const size_t offset = at;
    at += cuda::align_workspace(bytes);
    return offset;
  };
  const size_t items = static_cast<size_t>(s.batch * s.per_image);
  const size_t candidates = static_cast<size_t>(s.batch * s.top_k);
  layout.counts = take(sizeof(int32_t) * static_cast<size_t>(s.batch));
  layout.refused = take(sizeof(int32_t) * static_cast<size_t>(s.batch));
  layout.keys_in = take(sizeof(uint64_t) * items);
  layout.keys_out = take(sizeof(uint64_t) * items);
  size_t sort_bytes = 0;
  cuda::check(cub::DeviceRadixSort::SortKeys(nullptr, sort_bytes, static_cast<const uint64_t*>(nullptr),
                                             static_cast<uint64_t*>(nullptr), static_cast<int>(items), 0,
                                             keys.end_bit),
              op, "sizing the cub::DeviceRadixSort temporary storage");
  layout.sort_temp_bytes = sort_bytes;
  layout.sort_temp = take(sort_bytes);
  layout.boxes = take(sizeof(float4) * candidates);
  layout.areas = take(sizeof(float) * candidates);
  layout.scores = take(sizeof(float) * candidates);
  layout.labels = take(sizeof(int32_t) * candidates);
  layout.flats = take(sizeof(int32_t) * candidates);
  layout.mask = take(sizeof(uint64_t) * candidates * static_cast<size_t>(s.col_blocks()));
  layout.keep = take(sizeof(int32_t) * static_cast<size_t>(s.batch * s.max_detections));
  layout.keep_counts = take(sizeof(int32_t) * static_cast<size_t>(s.batch));
  layout.total = at;
  return layout;
}

// The workspace carved into typed pointers.
struct Workspace {
  int32_t* counts;
  int32_t* refused;
  uint64_t* keys_in;
  uint64_t* keys_out;
  void* sort_temp;
  size_t sort_temp_bytes;
  float4* boxes;
  float* areas;
  float* scores;
  int32_t* labels;
  int32_t* flats;
  uint64_t* mask;
  int32_t* keep;
  int32_t* keep_counts;
};

Workspace carve(void* workspace, size_t workspace_bytes, const Layout& layout, const char* op) {
  cuda::check_workspace(op, workspace, workspace_bytes, layout.total);
  char* base = static_cast<char*>(workspace);
  Workspace w;
  w.counts = reinterpret_cast<int32_t*>(base + layout.counts);
  w.refused = reinterpret_cast<int32_t*>(base + layout.refused);
  w.keys_in = reinterpret_cast<uint64_t*>(base + layout.keys_in);
  w.keys_out = reinterpret_cast<uint64_t*>(base + layout.keys_out);
  w.sort_temp = base + layout.sort_temp;
  w.sort_temp_bytes = layout.sort_temp_bytes;
  w.boxes = reinterpret_cast<float4*>(base + layout.boxes);
  w.areas = reinterpret_cast<float*>(base + layout.areas);
  w.scores = reinterpret_cast<float*>(base + layout.scores);
  w.labels = reinterpret_cast<int32_t*>(base + layout.labels);
  w.flats = reinterpret_cast<int32_t*>(base + layout.flats);
  w.mask = reinterpret_cast<uint64_t*>(base + layout.mask);
  w.keep = reinterpret_cast<int32_t*>(base + layout.keep);
  w.keep_counts = reinterpret_cast<int32_t*>(base + layout.keep_counts);
  return w;
}

// What one (image, flat index) is.
struct Evaluation {
  bool refused;
  bool candidate;
  float score;
};

__device__ inline bool refused_score(float value, bool logits) {
  return detail::is_nan(value) || (!logits && !detail::is_finite(value));
}

// decode_dense's candidates: flat index = level start + class * cells + y * width + x.
struct DenseSource {
  const void* scores[kMaxLevels];
  const void* distances[kMaxLevels];
  const void* centerness[kMaxLevels];
  int64_t start[kMaxLevels + 1];
  int64_t height[kMaxLevels];
  int64_t width[kMaxLevels];
  float stride[kMaxLevels];
  float unit[kMaxLevels];
  int levels;
  TensorType type;
  int64_t classes;
  bool has_centerness;
  bool logits;
  CenternessMode mode;
  float cell_offset;

  __device__ void locate(int64_t f, int* level, int64_t* label, int64_t* cell) const {
    int l = 0;
    while (l + 1 < levels && start[l + 1] <= f) ++l;
    const int64_t cells = height[l] * width[l];
    *level = l;
    *label = (f - start[l]) / cells;
    *cell = (f - start[l]) % cells;
  }

  __device__ detail::Box box_at(int64_t n, int l, int64_t cell) const {
    const int64_t cells = height[l] * width[l];
    const int64_t base = n * 4 * cells + cell;
    return detail::dense_box(cell % width[l], cell / width[l], stride[l], cell_offset, unit[l],
                             detail::load(distances[l], type, base), detail::load(distances[l], type, base + cells),
                             detail::load(distances[l], type, base + 2 * cells),
                             detail::load(distances[l], type, base + 3 * cells));
  }

  __device__ Evaluation evaluate(int64_t n, int64_t f, float threshold, const detail::SkipBounds& bounds) const {
    int l;
    int64_t k, cell;
    locate(f, &l, &k, &cell);
    const int64_t cells = height[l] * width[l];
    // As on the CPU, the centerness plane is checked once, with class 0.
    if (has_centerness && k == 0 && refused_score(detail::load(centerness[l], type, n * cells + cell), logits)) {
      return Evaluation{true, false, 0.0f};
    }
    const float value = detail::load(scores[l], type, (n * classes + k) * cells + cell);
    if (refused_score(value, logits)) return Evaluation{true, false, 0.0f};
    if (static_cast<double>(value) < bounds.logit) return Evaluation{false, false, 0.0f};
    const float centerness_value = has_centerness ? detail::load(centerness[l], type, n * cells + cell) : 0.0f;
    if (detail::cannot_pass(value, centerness_value, bounds)) return Evaluation{false, false, 0.0f};
    const float class_score = logits ? detail::sigmoid(value) : value;
    const float centerness_score =
        has_centerness ? (logits ? detail::sigmoid(centerness_value) : centerness_value) : 0.0f;
    const float score = detail::combine_scores(class_score, centerness_score, has_centerness, mode);
    if (!(score > threshold)) return Evaluation{false, false, 0.0f};
    if (!detail::box_is_finite(box_at(n, l, cell))) return Evaluation{true, false, 0.0f};
    return Evaluation{false, true, score};
  }

  __device__ detail::Box box(int64_t n, int64_t f) const {
    int l;
    int64_t k, cell;
    locate(f, &l, &k, &cell);
    return box_at(n, l, cell);
  }

  __device__ int32_t label(int64_t, int64_t f) const {
    int l;
    int64_t k, cell;
    locate(f, &l, &k, &cell);
    return static_cast<int32_t>(k);
  }
};

// decode_boxes's candidates: flat index = box * K + class, the position in scores[n].
struct BoxesSource {
  const void* boxes;
  const void* scores;
  TensorType type;
  int64_t count;
  int64_t classes;
  bool logits;
  BoxFormat format;

  __device__ detail::Box box(int64_t n, int64_t f) const {
    const int64_t base = (n * count + f / classes) * 4;
    return detail::decoded_box(detail::load(boxes, type, base), detail::load(boxes, type, base + 1),
                               detail::load(boxes, type, base + 2), detail::load(boxes, type, base + 3), format);
  }

  __device__ Evaluation evaluate(int64_t n, int64_t f, float threshold, const detail::SkipBounds& bounds) const {
    const float value = detail::load(scores, type, n * count * classes + f);
    if (refused_score(value, logits)) return Evaluation{true, false, 0.0f};
    if (detail::cannot_pass(value, 0.0f, bounds)) return Evaluation{false, false, 0.0f};
    const float score = logits ? detail::sigmoid(value) : value;
    if (!(score > threshold)) return Evaluation{false, false, 0.0f};
    if (!detail::box_is_finite(box(n, f))) return Evaluation{true, false, 0.0f};
    return Evaluation{false, true, score};
  }

  __device__ int32_t label(int64_t, int64_t f) const { return static_cast<int32_t>(f % classes); }
};

// nms's candidates: every box, flat index = box index.
struct NmsSource {
  const float* boxes;
  const float* scores;
  const int32_t* classes;

  __device__ detail::Box box(int64_t, int64_t f) const {
    return detail::Box{boxes[f * 4], boxes[f * 4 + 1], boxes[f * 4 + 2], boxes[f * 4 + 3]};
  }

  __device__ Evaluation evaluate(int64_t n, int64_t f, float, const detail::SkipBounds&) const {
    const float score = scores[f];
    if (detail::is_nan(score) || !detail::box_is_finite(box(n, f))) return Evaluation{true, false, 0.0f};
    return Evaluation{false, true, score};
  }

  __device__ int32_t label(int64_t, int64_t f) const { return classes ? classes[f] : 0; }
};

template <typename Source>
__global__ void candidate_keys_kernel(Source source, int64_t batch, int64_t per_image, float threshold,
                                      detail::SkipBounds bounds, int index_bits, uint64_t* keys, int32_t* counts,
                                      int32_t* refused) {
  const int64_t total = batch * per_image;
  const uint64_t not_a_candidate = (uint64_t{1} << (32 + index_bits)) - 1;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = g / per_image, f = g % per_image;
    const uint64_t image = static_cast<uint64_t>(n) << (32 + index_bits);
    const Evaluation e = source.evaluate(n, f, threshold, bounds);
    if (e.refused) refused[n] = 1;
    if (e.candidate) {
      keys[g] = image | (static_cast<uint64_t>(detail::descending_score_key(e.score)) << index_bits) |
                static_cast<uint64_t>(f);
      atomicAdd(counts + n, 1);
    } else {
      keys[g] = image | not_a_candidate;
    }
  }
}

template <typename Source>
__global__ void gather_kernel(Source source, int64_t batch, int64_t per_image, int64_t top_k, int index_bits,
                              const uint64_t* sorted, const int32_t* counts, float4* boxes, float* areas,
                              float* scores, int32_t* labels, int32_t* flats) {
  const uint64_t index_mask = (uint64_t{1} << index_bits) - 1;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < batch * top_k;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = g / top_k, t = g % top_k;
    if (t >= counts[n]) continue;
    const uint64_t key = sorted[n * per_image + t];
    const int64_t f = static_cast<int64_t>(key & index_mask);
    const detail::Box box = source.box(n, f);
    boxes[g] = make_float4(box.x1, box.y1, box.x2, box.y2);
    areas[g] = detail::box_area(box.x1, box.y1, box.x2, box.y2);
    scores[g] = detail::score_from_key(static_cast<uint32_t>(key >> index_bits));
    labels[g] = source.label(n, f);
    flats[g] = static_cast<int32_t>(f);
  }
}

__device__ inline int64_t valid_candidates(const int32_t* counts, int64_t n, int64_t top_k) {
  const int64_t count = counts[n];
  return count < top_k ? count : top_k;
}

// Block (column block, row block, image), kMaskBits threads: row i of the row block gets
// the bits of the later candidates of the column block that it suppresses.
__global__ void nms_mask_kernel(const float4* boxes, const float* areas, const int32_t* labels,
                                const int32_t* counts, int64_t top_k, int64_t col_blocks, float threshold,
                                bool class_agnostic, uint64_t* mask) {
  const int64_t n = blockIdx.z, row_block = blockIdx.y, col_block = blockIdx.x;
  const int64_t valid = valid_candidates(counts, n, top_k);
  if (col_block < row_block || col_block * kMaskBits >= valid) return;  // uniform per block
  const int64_t row_start = row_block * kMaskBits, col_start = col_block * kMaskBits;
  const int64_t rows = valid - row_start < kMaskBits ? valid - row_start : kMaskBits;
  const int64_t cols = valid - col_start < kMaskBits ? valid - col_start : kMaskBits;
  const int64_t base = n * top_k;

  __shared__ float4 col_boxes[kMaskBits];
  __shared__ float col_areas[kMaskBits];
  __shared__ int32_t col_labels[kMaskBits];
  const int64_t tid = threadIdx.x;
  if (tid < cols) {
    col_boxes[tid] = boxes[base + col_start + tid];
    col_areas[tid] = areas[base + col_start + tid];
    col_labels[tid] = labels[base + col_start + tid];
  }
  __syncthreads();
  if (tid >= rows) return;
  const int64_t i = row_start + tid;
  const float4 a = boxes[base + i];
  const float area_a = areas[base + i];
  const int32_t label_a = labels[base + i];
  uint64_t bits = 0;
  for (int64_t c = row_block == col_block ? tid + 1 : 0; c < cols; ++c) {
    const float4 b = col_boxes[c];
    if ((class_agnostic || col_labels[c] == label_a) &&
        detail::iou_exceeds(a.x, a.y, a.z, a.w, area_a, b.x, b.y, b.z, b.w, col_areas[c], threshold)) {
      bits |= uint64_t{1} << c;
    }
  }
  mask[(base + i) * col_blocks + col_block] = bits;
}

// One block per image: the greedy sweep over the mask rows, 64 candidates per step.
// removed[j] collects the suppressed bits of word j. Within a step only the words after the
// current one are written, each by one thread (j = block + 1 + threadIdx.x + m * blockDim.x),
// and the current word is read into a register after the __syncthreads that starts the
// step; every thread runs the same loop with the same `kept`, so the barrier is uniform.
__global__ void nms_sweep_kernel(const uint64_t* mask, const int32_t* counts, int64_t top_k, int64_t col_blocks,
                                 int64_t max_detections, int32_t* keep, int32_t* keep_counts) {
  extern __shared__ uint64_t removed[];
  const int64_t n = blockIdx.x;
  const int64_t valid = valid_candidates(counts, n, top_k);
  const int64_t blocks = (valid + kMaskBits - 1) / kMaskBits;
  for (int64_t j = threadIdx.x; j < blocks; j += blockDim.x) removed[j] = 0;
  const uint64_t* rows = mask + n * top_k * col_blocks;
  int64_t kept = 0;
  for (int64_t block = 0; block < blocks && kept < max_detections; ++block) {
    __syncthreads();
    uint64_t current = removed[block];
    for (int64_t bit = 0; bit < kMaskBits; ++bit) {
      const int64_t i = block * kMaskBits + bit;
      if (i >= valid) break;
      if (current & (uint64_t{1} << bit)) continue;
      if (threadIdx.x == 0) keep[n * max_detections + kept] = static_cast<int32_t>(i);
      if (++kept == max_detections) break;
      const uint64_t* row = rows + i * col_blocks;
      current |= row[block];
      for (int64_t j = block + 1 + threadIdx.x; j < blocks; j += blockDim.x) removed[j] |= row[j];
    }
  }
  if (threadIdx.x == 0) keep_counts[n] = static_cast<int32_t>(kept);
}

__global__ void write_detections_kernel(const float4* boxes, const float* scores, const int32_t* labels,
                                        const int32_t* keep, const int32_t* keep_counts, const int32_t* refused,
                                        const InputGeometry* geometries, int64_t top_k, DetectionsView out) {
  const int64_t slots = out.max_detections;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < out.batch * slots;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = g / slots, s = g % slots;
    const bool bad = refused[n] != 0 || (geometries != nullptr && !geometry_is_valid(geometries[n]));
    const int64_t count = bad ? 0 : keep_counts[n];
    if (s == 0) out.valid[n] = bad ? -1 : static_cast<int32_t>(count);
    float4 box = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float score = 0.0f;
    int32_t label = 0;
    if (s < count) {
      const int64_t c = n * top_k + keep[g];
      const detail::Box kept{boxes[c].x, boxes[c].y, boxes[c].z, boxes[c].w};
      const detail::Box mapped = geometries != nullptr ? detail::map_to_source(kept, geometries[n]) : kept;
      box = make_float4(mapped.x1, mapped.y1, mapped.x2, mapped.y2);
      score = scores[c];
      label = labels[c];
    }
    // Four stores: the caller's boxes need only float alignment.
    out.boxes[g * 4] = box.x;
    out.boxes[g * 4 + 1] = box.y;
    out.boxes[g * 4 + 2] = box.z;
    out.boxes[g * 4 + 3] = box.w;
    out.scores[g] = score;
    out.classes[g] = label;
  }
}

__global__ void write_keep_kernel(const int32_t* kept_positions, const int32_t* keep_counts, const int32_t* refused,
                                  const int32_t* flats, int64_t max_detections, int32_t* keep, int32_t* keep_count) {
  const bool bad = refused[0] != 0;
  const int64_t count = bad ? 0 : keep_counts[0];
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < max_detections;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keep[s] = s < count ? flats[kept_positions[s]] : -1;
    if (s == 0) *keep_count = bad ? -1 : static_cast<int32_t>(count);
  }
}

// Steps 1-4 for any source; leaves kept positions in w.keep and counts in w.keep_counts.
template <typename Source>
void enqueue_nms(const Source& source, const Shape& s, const KeyLayout& keys, float score_threshold,
                 const detail::SkipBounds& bounds, float iou_threshold, bool class_agnostic, const Workspace& w,
                 cudaStream_t stream, const char* op) {
  cuda::check(cudaMemsetAsync(w.counts, 0, sizeof(int32_t) * static_cast<size_t>(s.batch), stream), op,
              "clearing the candidate counts");
  cuda::check(cudaMemsetAsync(w.refused, 0, sizeof(int32_t) * static_cast<size_t>(s.batch), stream), op,
              "clearing the refused flags");
  const int64_t items = s.batch * s.per_image;
  candidate_keys_kernel<<<blocks_for(items), kThreads, 0, stream>>>(source, s.batch, s.per_image, score_threshold,
                                                                    bounds, keys.index_bits, w.keys_in, w.counts,
                                                                    w.refused);
  cuda::check(cudaGetLastError(), op, "launching the candidate kernel");
  size_t sort_bytes = w.sort_temp_bytes;
  cuda::check(cub::DeviceRadixSort::SortKeys(w.sort_temp, sort_bytes, w.keys_in, w.keys_out, static_cast<int>(items),
                                             0, keys.end_bit, stream),
              op, "cub::DeviceRadixSort::SortKeys");
  gather_kernel<<<blocks_for(s.batch * s.top_k), kThreads, 0, stream>>>(
      source, s.batch, s.per_image, s.top_k, keys.index_bits, w.keys_out, w.counts, w.boxes, w.areas, w.scores,
      w.labels, w.flats);
  cuda::check(cudaGetLastError(), op, "launching the gather kernel");
  const int64_t col_blocks = s.col_blocks();
  const dim3 mask_grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks),
                       static_cast<unsigned>(s.batch));
  nms_mask_kernel<<<mask_grid, static_cast<unsigned>(kMaskBits), 0, stream>>>(
      w.boxes, w.areas, w.labels, w.counts, s.top_k, col_blocks, iou_threshold, class_agnostic, w.mask);
  cuda::check(cudaGetLastError(), op, "launching the NMS mask kernel");
  nms_sweep_kernel<<<static_cast<unsigned>(s.batch), kSweepThreads, sizeof(uint64_t) * static_cast<size_t>(col_blocks),
                     stream>>>(w.mask, w.counts, s.top_k, col_blocks, s.max_detections, w.keep, w.keep_counts);
  cuda::check(cudaGetLastError(), op, "launching the NMS sweep kernel");
}

template <typename Source>
void enqueue_detections(const Source& source, const Shape& s, const NmsParams& params, const detail::SkipBounds& bounds,
                        const InputGeometry* geometries, const DetectionsView& out, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream, const char* op) {
  const KeyLayout keys = key_layout(s.batch, s.per_image);
  const Workspace w = carve(workspace, workspace_bytes, workspace_layout(s, keys, op), op);
  enqueue_nms(source, s, keys, params.score_threshold, bounds, params.iou_threshold, params.class_agnostic, w,
              stream, op);
  write_detections_kernel<<<blocks_for(s.batch * s.max_detections), kThreads, 0, stream>>>(
      w.boxes, w.scores, w.labels, w.keep, w.keep_counts, w.refused, geometries, s.top_k, out);
  cuda::check(cudaGetLastError(), op, "launching the output kernel");
}

// The size checks of check_decode_*_args that the workspace size depends on, for callers
// that size the workspace before they have the outputs.
void check_shape(const Shape& s, const char* op) {
  if (s.batch < 1 || s.batch > kMaxBatch || s.per_image < 1 || s.per_image > kMaxFlatCandidates / s.batch) {
    throw std::invalid_argument(std::string(op) + " (CUDA): the batch must hold 1 to " + std::to_string(kMaxBatch) +
                                " images of 1 to " + std::to_string(kMaxFlatCandidates) +
                                " (image, candidate) pairs in all; got " + std::to_string(s.batch) + " images of " +
                                std::to_string(s.per_image));
  }
}

// Candidates per image; 0 or more than kMaxFlatCandidates (refused by check_shape) for
// shapes that check_decode_dense_args refuses, without overflowing on absurd sizes.
int64_t dense_per_image(const DenseHeadView& head) {
  if (head.classes < 1) return 0;
  int64_t total = 0;
  for (const DenseLevelView& level : head.levels) {
    if (level.height < 1 || level.width < 1) return 0;
    if (level.height > kMaxFlatCandidates / level.width ||
        level.height * level.width > kMaxFlatCandidates / head.classes) {
      return kMaxFlatCandidates + 1;
    }
    total += head.classes * level.height * level.width;
    if (total > kMaxFlatCandidates) return kMaxFlatCandidates + 1;
  }
  return total;
}

Shape dense_shape(const DenseHeadView& head, const NmsParams& params) {
  const int64_t per_image = dense_per_image(head);
  return Shape{head.batch, per_image, std::min(params.pre_nms_top_k, per_image), params.max_detections};
}

Shape boxes_shape(const BoxesView& input, const NmsParams& params) {
  const bool fits = input.count >= 1 && input.classes >= 1 && input.count <= kMaxFlatCandidates / input.classes;
  const int64_t per_image = fits ? input.count * input.classes : 0;
  return Shape{input.batch, per_image, std::min(params.pre_nms_top_k, per_image), params.max_detections};
}

// nms of zero boxes still needs a valid layout; one slot of everything is enough.
Shape nms_shape(int64_t count, int64_t max_detections) {
  const int64_t slots = count > 0 ? count : 1;
  return Shape{1, slots, slots, max_detections};
}

DenseSource dense_source(const DenseHeadView& head, const DenseDecodeParams& decode) {
  DenseSource source{};
  source.levels = static_cast<int>(head.levels.size());
  int64_t start = 0;
  for (int l = 0; l < source.levels; ++l) {
    const DenseLevelView& level = head.levels[static_cast<size_t>(l)];
    source.scores[l] = level.scores;
    source.distances[l] = level.distances;
    source.centerness[l] = level.centerness;
    source.start[l] = start;
    source.height[l] = level.height;
    source.width[l] = level.width;
    source.stride[l] = level.stride;
    source.unit[l] = decode.distance_units == DistanceUnits::kStrides ? level.stride : 1.0f;
    start += head.classes * level.height * level.width;
  }
  source.start[source.levels] = start;
  source.type = head.type;
  source.classes = head.classes;
  source.has_centerness = head.levels[0].centerness != nullptr;
  source.logits = decode.scores == ScoreKind::kLogits;
  source.mode = decode.centerness;
  source.cell_offset = decode.cell_offset;
  return source;
}

detail::SkipBounds dense_skip_bounds(const DenseHeadView& head, const DenseDecodeParams& decode,
                                     const NmsParams& params) {
  return detail::skip_bounds(params.score_threshold, decode.scores, head.levels[0].centerness != nullptr,
                             decode.centerness);
}

BoxesSource boxes_source(const BoxesView& input, const BoxesDecodeParams& decode) {
  return BoxesSource{input.boxes,   input.scores, input.type, input.count, input.classes,
                     decode.scores == ScoreKind::kLogits, decode.format};
}

detail::SkipBounds boxes_skip_bounds(const BoxesDecodeParams& decode, const NmsParams& params) {
  return detail::skip_bounds(params.score_threshold, decode.scores, false, CenternessMode::kGeometricMean);
}

size_t element_bytes(TensorType type) { return type == TensorType::kFloat32 ? 4 : 2; }

// Device copies of host arrays, owned for a scope.
class Upload {
 public:
  Upload(const void* host, size_t bytes, cudaStream_t stream, const char* op, const char* what)
      : buffer_(bytes, op) {
    if (bytes > 0) {
      cuda::check(cudaMemcpyAsync(buffer_.get(), host, bytes, cudaMemcpyHostToDevice, stream), op, what);
    }
  }
  void* get() const { return buffer_.get(); }

 private:
  cuda::DeviceBuffer buffer_;
};

// Output buffers on the device, staged back to the host once the stream has finished.
class DeviceDetections {
 public:
  DeviceDetections(int64_t batch, int64_t slots, const char* op)
      : batch_(batch),
        slots_(slots),
        boxes_(sizeof(float) * static_cast<size_t>(batch * slots * 4), op),
        scores_(sizeof(float) * static_cast<size_t>(batch * slots), op),
        classes_(sizeof(int32_t) * static_cast<size_t>(batch * slots), op),
        valid_(sizeof(int32_t) * static_cast<size_t>(batch), op),
        host_boxes_(static_cast<size_t>(batch * slots * 4)),
        host_scores_(static_cast<size_t>(batch * slots)),
        host_classes_(static_cast<size_t>(batch * slots)),
        host_valid_(static_cast<size_t>(batch)) {}

  DetectionsView view() const {
    return DetectionsView{static_cast<float*>(boxes_.get()),    static_cast<float*>(scores_.get()),
                          static_cast<int32_t*>(classes_.get()), static_cast<int32_t*>(valid_.get()), batch_,
                          slots_};
  }

  void download(cudaStream_t stream, const char* op) {
    const auto copy = [&](void* host, const cuda::DeviceBuffer& device, size_t bytes) {
      cuda::check(cudaMemcpyAsync(host, device.get(), bytes, cudaMemcpyDeviceToHost, stream), op,
                  "copying the detections to the host");
    };
    copy(host_boxes_.data(), boxes_, sizeof(float) * host_boxes_.size());
    copy(host_scores_.data(), scores_, sizeof(float) * host_scores_.size());
    copy(host_classes_.data(), classes_, sizeof(int32_t) * host_classes_.size());
    copy(host_valid_.data(), valid_, sizeof(int32_t) * host_valid_.size());
    cuda::check(cudaStreamSynchronize(stream), op, "running the detection kernels");
  }

  // Throws for an image the kernels refused; otherwise writes `out`.
  void deliver(const DetectionsView& out, const char* op) const {
    for (int64_t n = 0; n < batch_; ++n) {
      if (host_valid_[static_cast<size_t>(n)] < 0) {
        throw std::invalid_argument(std::string(op) + " (CUDA): image " + std::to_string(n) +
                                    " holds a NaN score or centerness, a non-finite probability or a non-finite "
                                    "candidate box. The detector output is broken: check the engine and its input");
      }
    }
    std::memcpy(out.boxes, host_boxes_.data(), sizeof(float) * host_boxes_.size());
    std::memcpy(out.scores, host_scores_.data(), sizeof(float) * host_scores_.size());
    std::memcpy(out.classes, host_classes_.data(), sizeof(int32_t) * host_classes_.size());
    std::memcpy(out.valid, host_valid_.data(), sizeof(int32_t) * host_valid_.size());
  }

 private:
  int64_t batch_, slots_;
  cuda::DeviceBuffer boxes_, scores_, classes_, valid_;
  std::vector<float> host_boxes_, host_scores_;
  std::vector<int32_t> host_classes_, host_valid_;
};

std::unique_ptr<Upload> upload_geometries(const InputGeometry* geometries, int64_t batch, cudaStream_t stream,
                                          const char* op) {
  if (!geometries) return nullptr;
  return std::make_unique<Upload>(geometries, sizeof(InputGeometry) * static_cast<size_t>(batch), stream, op,
                                  "copying the geometries to the device");
}

}  // namespace

size_t decode_dense_cuda_workspace_bytes(const DenseHeadView& head, const NmsParams& params) {
  check_nms_params(params);
  const Shape s = dense_shape(head, params);
  check_shape(s, "decode_dense");
  return workspace_layout(s, key_layout(s.batch, s.per_image), "decode_dense").total;
}

void decode_dense_cuda(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                       const InputGeometry* geometries, const DetectionsView& out, void* workspace,
                       size_t workspace_bytes, CUstream_st* stream) {
  check_decode_dense_args(head, decode, params, out);
  enqueue_detections(dense_source(head, decode), dense_shape(head, params), params,
                     dense_skip_bounds(head, decode, params), geometries, out, workspace, workspace_bytes, stream,
                     "decode_dense");
}

size_t decode_boxes_cuda_workspace_bytes(const BoxesView& input, const NmsParams& params) {
  check_nms_params(params);
  const Shape s = boxes_shape(input, params);
  check_shape(s, "decode_boxes");
  return workspace_layout(s, key_layout(s.batch, s.per_image), "decode_boxes").total;
}

void decode_boxes_cuda(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                       const InputGeometry* geometries, const DetectionsView& out, void* workspace,
                       size_t workspace_bytes, CUstream_st* stream) {
  check_decode_boxes_args(input, decode, params, out);
  enqueue_detections(boxes_source(input, decode), boxes_shape(input, params), params, boxes_skip_bounds(decode, params),
                     geometries, out, workspace, workspace_bytes, stream, "decode_boxes");
}

size_t nms_cuda_workspace_bytes(int64_t count, int64_t max_detections) {
  if (count < 0 || count > kMaxNmsCandidates || max_detections < 1 || max_detections > kMaxNmsCandidates) {
    throw std::invalid_argument("nms (CUDA): takes 0 to " + std::to_string(kMaxNmsCandidates) +
                                " boxes and max_detections 1 to " + std::to_string(kMaxNmsCandidates) + "; got " +
                                std::to_string(count) + " boxes, max_detections " + std::to_string(max_detections));
  }
  const Shape s = nms_shape(count, max_detections);
  return workspace_layout(s, key_layout(s.batch, s.per_image), "nms").total;
}

void nms_cuda(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep,
              int32_t* keep_count, void* workspace, size_t workspace_bytes, CUstream_st* stream) {
  constexpr const char* op = "nms";
  check_nms_args(input, iou_threshold, max_detections);
  if (!keep || !keep_count) throw std::invalid_argument("nms (CUDA): keep or keep_count has no data pointer");
  const Shape s = nms_shape(input.count, max_detections);
  const KeyLayout keys = key_layout(s.batch, s.per_image);
  const Workspace w = carve(workspace, workspace_bytes, workspace_layout(s, keys, op), op);
  if (input.count == 0) {
    // All bytes 0xff is -1 in every int32 slot.
    cuda::check(cudaMemsetAsync(keep, 0xff, sizeof(int32_t) * static_cast<size_t>(max_detections), stream), op,
                "clearing keep");
    cuda::check(cudaMemsetAsync(keep_count, 0, sizeof(int32_t), stream), op, "clearing keep_count");
    return;
  }
  const NmsSource source{input.boxes, input.scores, input.classes};
  enqueue_nms(source, s, keys, 0.0f, detail::SkipBounds{}, iou_threshold, input.classes == nullptr, w, stream, op);
  write_keep_kernel<<<blocks_for(max_detections), kThreads, 0, stream>>>(w.keep, w.keep_counts, w.refused, w.flats,
                                                                         max_detections, keep, keep_count);
  cuda::check(cudaGetLastError(), op, "launching the keep kernel");
}

void decode_dense_cuda_host(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                            const InputGeometry* geometries, const DetectionsView& out) {
  constexpr const char* op = "decode_dense";
  check_decode_dense_args(head, decode, params, out);
  check_geometries(geometries, head.batch, op);
  cuda::require_device(op);
  cuda::Stream stream(op);

  const size_t element = element_bytes(head.type);
  DenseHeadView device_head = head;
  std::vector<std::unique_ptr<Upload>> uploads;
  for (size_t l = 0; l < head.levels.size(); ++l) {
    const DenseLevelView& level = head.levels[l];
    const size_t cells = static_cast<size_t>(head.batch * level.height * level.width);
    uploads.push_back(std::make_unique<Upload>(level.scores, element * cells * static_cast<size_t>(head.classes),
                                               stream.get(), op, "copying scores to the device"));
    device_head.levels[l].scores = uploads.back()->get();
    uploads.push_back(std::make_unique<Upload>(level.distances, element * cells * 4, stream.get(), op,
                                               "copying distances to the device"));
    device_head.levels[l].distances = uploads.back()->get();
    if (level.centerness) {
      uploads.push_back(std::make_unique<Upload>(level.centerness, element * cells, stream.get(), op,
                                                 "copying centerness to the device"));
      device_head.levels[l].centerness = uploads.back()->get();
    }
  }
  const std::unique_ptr<Upload> device_geometries = upload_geometries(geometries, head.batch, stream.get(), op);
  DeviceDetections detections(head.batch, params.max_detections, op);
  const size_t workspace_bytes = decode_dense_cuda_workspace_bytes(head, params);
  cuda::DeviceBuffer workspace(workspace_bytes, op);
  decode_dense_cuda(device_head, decode, params,
                    device_geometries ? static_cast<const InputGeometry*>(device_geometries->get()) : nullptr,
                    detections.view(), workspace.get(), workspace_bytes, stream.get());
  detections.download(stream.get(), op);
  detections.deliver(out, op);
}

void decode_boxes_cuda_host(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                            const InputGeometry* geometries, const DetectionsView& out) {
  constexpr const char* op = "decode_boxes";
  check_decode_boxes_args(input, decode, params, out);
  check_geometries(geometries, input.batch, op);
  cuda::require_device(op);
  cuda::Stream stream(op);

  const size_t element = element_bytes(input.type);
  const Upload boxes(input.boxes, element * static_cast<size_t>(input.batch * input.count * 4), stream.get(), op,
                     "copying boxes to the device");
  const Upload scores(input.scores, element * static_cast<size_t>(input.batch * input.count * input.classes),
                      stream.get(), op, "copying scores to the device");
  BoxesView device_input = input;
  device_input.boxes = boxes.get();
  device_input.scores = scores.get();
  const std::unique_ptr<Upload> device_geometries = upload_geometries(geometries, input.batch, stream.get(), op);
  DeviceDetections detections(input.batch, params.max_detections, op);
  const size_t workspace_bytes = decode_boxes_cuda_workspace_bytes(input, params);
  cuda::DeviceBuffer workspace(workspace_bytes, op);
  decode_boxes_cuda(device_input, decode, params,
                    device_geometries ? static_cast<const InputGeometry*>(device_geometries->get()) : nullptr,
                    detections.view(), workspace.get(), workspace_bytes, stream.get());
  detections.download(stream.get(), op);
  detections.deliver(out, op);
}

int64_t nms_cuda_host(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep) {
  constexpr const char* op = "nms";
  check_nms_args(input, iou_threshold, max_detections);
  if (!keep) throw std::invalid_argument("nms: keep has no data pointer");
  cuda::require_device(op);
  cuda::Stream stream(op);

  const size_t count = static_cast<size_t>(input.count);
  const Upload boxes(input.boxes, sizeof(float) * count * 4, stream.get(), op, "copying boxes to the device");
  const Upload scores(input.scores, sizeof(float) * count, stream.get(), op, "copying scores to the device");
  const std::unique_ptr<Upload> classes =
      input.classes ? std::make_unique<Upload>(input.classes, sizeof(int32_t) * count, stream.get(), op,
                                               "copying classes to the device")
                    : nullptr;
  NmsBoxesView device_input = input;
  device_input.boxes = static_cast<const float*>(boxes.get());
  device_input.scores = static_cast<const float*>(scores.get());
  device_input.classes = classes ? static_cast<const int32_t*>(classes->get()) : nullptr;

  cuda::DeviceBuffer device_keep(sizeof(int32_t) * static_cast<size_t>(max_detections), op);
  cuda::DeviceBuffer device_count(sizeof(int32_t), op);
  const size_t workspace_bytes = nms_cuda_workspace_bytes(input.count, max_detections);
  cuda::DeviceBuffer workspace(workspace_bytes, op);
  nms_cuda(device_input, iou_threshold, max_detections, static_cast<int32_t*>(device_keep.get()),
           static_cast<int32_t*>(device_count.get()), workspace.get(), workspace_bytes, stream.get());

  std::vector<int32_t> staged(static_cast<size_t>(max_detections));
  int32_t kept = 0;
  cuda::check(cudaMemcpyAsync(staged.data(), device_keep.get(), sizeof(int32_t) * staged.size(),
                              cudaMemcpyDeviceToHost, stream.get()),
              op, "copying keep to the host");
  cuda::check(cudaMemcpyAsync(&kept, device_count.get(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream.get()), op,
              "copying keep_count to the host");
  cuda::check(cudaStreamSynchronize(stream.get()), op, "running the NMS kernels");
  if (kept < 0) {
    throw std::invalid_argument("nms (CUDA): a score is NaN or a box is not finite; scores may be any number but NaN "
                                "and boxes must be finite");
  }
  std::memcpy(keep, staged.data(), sizeof(int32_t) * staged.size());
  return kept;
}

}  // namespace radedge
