// CPU implementation of the detection ops (see radedge/detection.h).
//
// Layout of the work, per call:
//   1. scan: the flat (image, candidate) range is split across threads; each thread reads
//      its scores, skips logits that detail::cannot_pass without a sigmoid, and keeps
//      (score, flat index, class, box) for every candidate above the threshold. Refused
//      values are noted with their flat position, so the error names the first one
//      whatever the thread count.
//   2. per image: the top pre_nms_top_k candidates by (score desc, flat index asc), sorted.
//   3. NMS: one task per (image, class) bucket, or per image when class-agnostic, taken by
//      the threads from a shared counter. Greedy NMS restricted to one class is exactly the
//      class-aware NMS of that class, and a class's candidates after its first
//      max_detections kept ones can never be among the first max_detections overall, so
//      each bucket stops there. The inner loop tests one kept box against every later box
//      of its bucket, branch-free over arrays of coordinates and precomputed areas.
//   4. per image: the kept positions of all buckets, sorted, first max_detections, mapped
//      to the source image and written; the remaining slots are zeroed.
// Nothing is written to the outputs before every check has passed.

// The shared float expressions of radedge/detection.h must round as the CUDA kernels do:
// the build compiles the CPU ops with -ffp-contract=off (CMakeLists.txt), so no multiply and
// add are fused into an FMA on targets that have one (aarch64, x86-64 with -mfma).

#include "radedge/detection.h"

#include <algorithm>
#include <atomic>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

#include "radedge/parallel.h"

namespace radedge {
namespace {

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

template <typename... Parts>
std::string text(const Parts&... parts) {
  std::ostringstream message;
  message << std::setprecision(9);
  (message << ... << parts);
  return message.str();
}

bool known(TensorType type) { return type == TensorType::kFloat32 || type == TensorType::kFloat16; }
bool known(ScoreKind kind) { return kind == ScoreKind::kLogits || kind == ScoreKind::kProbabilities; }

void check_output(const char* op, const DetectionsView& out, int64_t batch, const NmsParams& params) {
  if (out.batch != batch || out.max_detections != params.max_detections) {
    fail(op, ": the outputs must hold [", batch, ", ", params.max_detections,
         "] detections (batch x max_detections); got [", out.batch, ", ", out.max_detections, "]");
  }
  if (!out.boxes || !out.scores || !out.classes || !out.valid) {
    fail(op, ": an output (boxes, scores, classes or valid) has no data pointer");
  }
}

void check_batch(const char* op, int64_t batch) {
  if (batch < 1 || batch > kMaxBatch) {
    fail(op, ": the batch must hold 1 to ", kMaxBatch, " images; got ", batch);
  }
}

void check_capacity(const char* op, int64_t batch, int64_t per_image, const char* what) {
  // batch * per_image must fit the 31-bit flat index of the sort keys.
  if (per_image > kMaxFlatCandidates / batch) {
    fail(op, ": ", batch, " images x ", per_image, " ", what, " per image is more than the ", kMaxFlatCandidates,
         " (image, candidate) pairs one call can rank; split the batch");
  }
}

}  // namespace

void check_nms_params(const NmsParams& params) {
  if (!(params.score_threshold >= 0.0f && params.score_threshold < 1.0f)) {
    fail("score_threshold must be in [0, 1) (a candidate needs score > score_threshold); got ",
         params.score_threshold);
  }
  if (!(params.iou_threshold >= 0.0f && params.iou_threshold <= 1.0f)) {
    fail("iou_threshold must be in [0, 1] (IoU > iou_threshold suppresses); got ", params.iou_threshold);
  }
  if (params.pre_nms_top_k < 1 || params.pre_nms_top_k > kMaxNmsCandidates) {
    fail("pre_nms_top_k must be 1 to ", kMaxNmsCandidates, " candidates per image; got ", params.pre_nms_top_k);
  }
  if (params.max_detections < 1 || params.max_detections > kMaxNmsCandidates) {
    fail("max_detections must be 1 to ", kMaxNmsCandidates, " per image; got ", params.max_detections);
  }
}

void check_decode_dense_args(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                             const DetectionsView& out) {
  constexpr const char* op = "decode_dense";
  check_nms_params(params);
  const int64_t levels = static_cast<int64_t>(head.levels.size());
  if (levels < 1 || levels > kMaxLevels) fail(op, ": the head must have 1 to ", kMaxLevels, " levels; got ", levels);
  if (!known(head.type)) fail(op, ": the tensors must be float32 or float16; got type ", static_cast<int>(head.type));
  if (!known(decode.scores)) {
    fail(op, ": scores must be logits or probabilities; got ", static_cast<int>(decode.scores));
  }
  if (decode.centerness != CenternessMode::kGeometricMean && decode.centerness != CenternessMode::kProduct) {
    fail(op, ": centerness mode must be geometric mean or product; got ", static_cast<int>(decode.centerness));
  }
  if (decode.distance_units != DistanceUnits::kStrides && decode.distance_units != DistanceUnits::kPixels) {
    fail(op, ": distance units must be strides or pixels; got ", static_cast<int>(decode.distance_units));
  }
  if (!(decode.cell_offset >= 0.0f && decode.cell_offset <= 1.0f)) {
    fail(op, ": cell_offset must be in [0, 1] (0.5 puts cell centres at (x + 0.5) * stride); got ",
         decode.cell_offset);
  }
  check_batch(op, head.batch);
  if (head.classes < 1) fail(op, ": the head needs at least one class; got ", head.classes);
  const bool has_centerness = head.levels[0].centerness != nullptr;
  int64_t per_image = 0;
  for (int64_t l = 0; l < levels; ++l) {
    const DenseLevelView& level = head.levels[static_cast<size_t>(l)];
    if (level.height < 1 || level.width < 1) {
      fail(op, ": level ", l, " is empty (", level.height, " x ", level.width, " cells); every level needs >= 1 cell");
    }
    if (!(level.stride > 0.0f) || !std::isfinite(level.stride)) {
      fail(op, ": the stride of level ", l, " must be a finite number of pixels > 0; got ", level.stride);
    }
    if (!level.scores || !level.distances) fail(op, ": level ", l, " has no scores or distances data pointer");
    if ((level.centerness != nullptr) != has_centerness) {
      fail(op, ": centerness must be given for every level or for none; level 0 ", has_centerness ? "has" : "has none",
           ", level ", l, has_centerness ? " has none" : " has it");
    }
    if (level.height > kMaxFlatCandidates / level.width ||
        level.height * level.width > kMaxFlatCandidates / head.classes) {
      fail(op, ": level ", l, " has ", level.height, " x ", level.width, " cells x ", head.classes,
           " classes, more than one call can rank");
    }
    per_image += head.classes * level.height * level.width;
    if (per_image > kMaxFlatCandidates) fail(op, ": the levels hold more candidates per image than one call can rank");
  }
  check_capacity(op, head.batch, per_image, "(cell, class) pairs");
  check_output(op, out, head.batch, params);
}

void check_decode_boxes_args(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                             const DetectionsView& out) {
  constexpr const char* op = "decode_boxes";
  check_nms_params(params);
  if (!known(input.type)) {
    fail(op, ": boxes and scores must be float32 or float16; got type ", static_cast<int>(input.type));
  }
  if (!known(decode.scores)) {
    fail(op, ": scores must be logits or probabilities; got ", static_cast<int>(decode.scores));
  }
  if (decode.format != BoxFormat::kCorners && decode.format != BoxFormat::kCentreSize) {
    fail(op, ": box format must be corners (x1 y1 x2 y2) or centre-size (cx cy w h); got ",
         static_cast<int>(decode.format));
  }
  check_batch(op, input.batch);
  if (input.count < 1) fail(op, ": there must be at least one box per image; got ", input.count);
  if (input.classes < 1) fail(op, ": scores need at least one class; got ", input.classes);
  if (input.count > kMaxFlatCandidates / input.classes) {
    fail(op, ": ", input.count, " boxes x ", input.classes, " classes is more than one call can rank");
  }
  check_capacity(op, input.batch, input.count * input.classes, "(box, class) pairs");
  if (!input.boxes || !input.scores) fail(op, ": boxes or scores has no data pointer");
  check_output(op, out, input.batch, params);
}

void check_nms_args(const NmsBoxesView& input, float iou_threshold, int64_t max_detections) {
  if (!(iou_threshold >= 0.0f && iou_threshold <= 1.0f)) {
    fail("nms: iou_threshold must be in [0, 1] (IoU > iou_threshold suppresses); got ", iou_threshold);
  }
  if (input.count < 0 || input.count > kMaxNmsCandidates) {
    fail("nms: takes 0 to ", kMaxNmsCandidates, " boxes; got ", input.count,
         ". Keep the best-scoring ones first (a top-k on the scores)");
  }
  if (max_detections < 1 || max_detections > kMaxNmsCandidates) {
    fail("nms: max_detections must be 1 to ", kMaxNmsCandidates, "; got ", max_detections);
  }
  if (input.count > 0 && (!input.boxes || !input.scores)) fail("nms: boxes or scores has no data pointer");
}

namespace detail {

SkipBounds skip_bounds(float score_threshold, ScoreKind scores, bool has_centerness, CenternessMode mode) {
  SkipBounds bounds;
  if (scores != ScoreKind::kLogits) return bounds;
  const bool geometric = has_centerness && mode == CenternessMode::kGeometricMean;
  const double t = geometric ? static_cast<double>(score_threshold) * score_threshold
                             : static_cast<double>(score_threshold);
  if (!(t > 0.0)) return bounds;
  const double p = t * (1.0 - 1e-6);
  bounds.logit = std::log(p / (1.0 - p));
  if (has_centerness) {
    bounds.per_cell = true;
    bounds.log_with_centerness = std::log(p);
  }
  return bounds;
}

}  // namespace detail

namespace {

struct Candidate {
  float score;
  int32_t flat;   // flat index within its image (the tie-break)
  int32_t label;  // class
  detail::Box box;
};

// The one order of the ops: score descending, then the lower flat index.
inline bool before(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.flat < b.flat);
}

// The first refused value a thread met, by global flat position.
struct Problem {
  int64_t position = std::numeric_limits<int64_t>::max();
  std::string message;
  void note(int64_t at, std::string what) {
    if (at < position) {
      position = at;
      message = std::move(what);
    }
  }
};

// What one scan chunk found: the candidates of each image (a chunk spans one or a few
// images, so most of these vectors stay empty and unallocated).
struct ScanResult {
  std::vector<std::vector<Candidate>> per_image;
  Problem problem;
};

// Runs scan(first, last, result) over [0, total) on threads and returns the candidates of
// every image; throws the first problem.
template <typename Scan>
std::vector<std::vector<Candidate>> scan_all(int64_t batch, int64_t total, int threads, Scan&& scan) {
  const int resolved = threads > 0 ? threads : default_thread_count();
  const int64_t min_chunk = int64_t{1} << 15;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(resolved, total / min_chunk));
  std::vector<ScanResult> results(static_cast<size_t>(chunks));
  for (ScanResult& r : results) r.per_image.resize(static_cast<size_t>(batch));
  parallel_for(0, chunks, static_cast<int>(chunks), 1, [&](int64_t first_chunk, int64_t last_chunk) {
    for (int64_t c = first_chunk; c < last_chunk; ++c) {
      scan(total * c / chunks, total * (c + 1) / chunks, results[static_cast<size_t>(c)]);
    }
  });
  Problem first;
  for (const ScanResult& r : results) first.note(r.problem.position, r.problem.message);
  if (first.position != std::numeric_limits<int64_t>::max()) throw std::invalid_argument(first.message);
  std::vector<std::vector<Candidate>> per_image(static_cast<size_t>(batch));
  for (ScanResult& r : results) {
    for (size_t n = 0; n < per_image.size(); ++n) {
      std::vector<Candidate>& found = r.per_image[n];
      if (per_image[n].empty()) {
        per_image[n] = std::move(found);
      } else {
        per_image[n].insert(per_image[n].end(), found.begin(), found.end());
      }
    }
  }
  return per_image;
}

// Greedy NMS of one bucket: positions (ascending) into the image's sorted candidates.
//
// A box can only suppress a box that overlaps it horizontally, so the boxes are grouped
// into vertical strips by x1 (a counting sort), and a kept box is tested only against the
// strips from x1 - (widest box) to x2: the boxes outside cannot reach it. The test needs
// no "later in score order" condition: an earlier box that is kept overlaps the current
// one by IoU <= threshold (else the current one would be gone), IoU is symmetric bit for
// bit, and marking an already removed box (or the kept box itself) changes nothing.
void suppress_bucket(const std::vector<Candidate>& sorted, const int32_t* positions, size_t count, float threshold,
                     int64_t max_detections, std::vector<int32_t>& kept) {
  double min_x1 = std::numeric_limits<double>::infinity(), max_x1 = -min_x1, widest = 0.0;
  for (size_t i = 0; i < count; ++i) {
    const detail::Box& b = sorted[static_cast<size_t>(positions[i])].box;
    min_x1 = std::min(min_x1, static_cast<double>(b.x1));
    max_x1 = std::max(max_x1, static_cast<double>(b.x1));
    widest = std::max(widest, static_cast<double>(b.x2) - static_cast<double>(b.x1));
  }
  // About 16 boxes per strip; one strip when every x1 is the same.
  const int64_t strips = max_x1 > min_x1 ? std::clamp<int64_t>(static_cast<int64_t>(count / 16), 1, 256) : 1;
  const double strip_width = strips > 1 ? (max_x1 - min_x1) / static_cast<double>(strips) : 1.0;
  const auto strip_of = [&](double x) {
    const double s = std::floor((x - min_x1) / strip_width);
    return s < 0.0 ? int64_t{0} : (s >= static_cast<double>(strips) ? strips - 1 : static_cast<int64_t>(s));
  };

  // The boxes in strip order: SoA coordinates and areas, and where each score rank went.
  std::vector<int64_t> strip_start(static_cast<size_t>(strips) + 1, 0);
  std::vector<int64_t> strip_of_rank(count);
  for (size_t i = 0; i < count; ++i) {
    strip_of_rank[i] = strip_of(sorted[static_cast<size_t>(positions[i])].box.x1);
    ++strip_start[static_cast<size_t>(strip_of_rank[i]) + 1];
  }
  for (int64_t s = 0; s < strips; ++s) strip_start[static_cast<size_t>(s) + 1] += strip_start[static_cast<size_t>(s)];
  std::vector<float> x1(count), y1(count), x2(count), y2(count), area(count);
  std::vector<size_t> slot_of_rank(count);
  std::vector<int64_t> fill(strip_start.begin(), strip_start.end() - 1);
  for (size_t i = 0; i < count; ++i) {
    const size_t slot = static_cast<size_t>(fill[static_cast<size_t>(strip_of_rank[i])]++);
    const detail::Box& b = sorted[static_cast<size_t>(positions[i])].box;
    x1[slot] = b.x1;
    y1[slot] = b.y1;
    x2[slot] = b.x2;
    y2[slot] = b.y2;
    area[slot] = detail::box_area(b.x1, b.y1, b.x2, b.y2);
    slot_of_rank[i] = slot;
  }

  std::vector<uint8_t> removed(count, 0);
  const float* __restrict bx1 = x1.data();
  const float* __restrict by1 = y1.data();
  const float* __restrict bx2 = x2.data();
  const float* __restrict by2 = y2.data();
  const float* __restrict barea = area.data();
  uint8_t* __restrict gone = removed.data();
  int64_t kept_here = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t a = slot_of_rank[i];
    if (gone[a]) continue;
    kept.push_back(positions[i]);
    if (++kept_here == max_detections) break;
    const float ax1 = bx1[a], ay1 = by1[a], ax2 = bx2[a], ay2 = by2[a], aarea = barea[a];
    // An overlapping box has x1 < ax2 and x1 > ax1 - its width >= ax1 - widest; the
    // margin covers the rounding of these doubles.
    const double reach = widest + 1e-6 * (std::fabs(static_cast<double>(ax1)) + widest) + 1e-30;
    const size_t first = static_cast<size_t>(strip_start[static_cast<size_t>(strip_of(ax1 - reach))]);
    const size_t last = static_cast<size_t>(strip_start[static_cast<size_t>(strip_of(ax2)) + 1]);
    for (size_t j = first; j < last; ++j) {
      gone[j] |= static_cast<uint8_t>(
          detail::iou_exceeds(ax1, ay1, ax2, ay2, aarea, bx1[j], by1[j], bx2[j], by2[j], barea[j], threshold));
    }
  }
}

// Steps 2 and 3 for every image: returns, per image, the kept candidates in order.
std::vector<std::vector<Candidate>> select_and_suppress(std::vector<std::vector<Candidate>>& per_image,
                                                        int64_t top_k, float iou_threshold, int64_t max_detections,
                                                        bool class_agnostic, int threads) {
  const int64_t batch = static_cast<int64_t>(per_image.size());
  size_t total = 0;
  for (const auto& c : per_image) total += std::min<size_t>(c.size(), static_cast<size_t>(top_k));
  // A thread costs ~20-50 us to start; below a few thousand candidates one thread is faster.
  const int workers = total >= 4096 ? (threads > 0 ? threads : default_thread_count()) : 1;

  parallel_for(0, batch, workers, 1, [&](int64_t first, int64_t last) {
    for (int64_t n = first; n < last; ++n) {
      std::vector<Candidate>& c = per_image[static_cast<size_t>(n)];
      if (static_cast<int64_t>(c.size()) > top_k) {
        std::nth_element(c.begin(), c.begin() + top_k, c.end(), before);
        c.resize(static_cast<size_t>(top_k));
      }
      std::sort(c.begin(), c.end(), before);
    }
  });

  // Buckets: per image, its sorted positions grouped by class (ascending within a class).
  struct Bucket {
    int64_t image;
    size_t first, count;  // into order[image]
  };
  std::vector<std::vector<int32_t>> order(static_cast<size_t>(batch));
  std::vector<Bucket> buckets;
  for (int64_t n = 0; n < batch; ++n) {
    const std::vector<Candidate>& c = per_image[static_cast<size_t>(n)];
    std::vector<int32_t>& o = order[static_cast<size_t>(n)];
    o.resize(c.size());
    std::iota(o.begin(), o.end(), 0);
    if (!class_agnostic) {
      std::stable_sort(o.begin(), o.end(), [&c](int32_t a, int32_t b) {
        return c[static_cast<size_t>(a)].label < c[static_cast<size_t>(b)].label;
      });
    }
    const auto label = [&](size_t i) { return c[static_cast<size_t>(o[i])].label; };
    size_t start = 0;
    for (size_t i = 1; i <= o.size(); ++i) {
      if (i == o.size() || (!class_agnostic && label(i) != label(start))) {
        buckets.push_back(Bucket{n, start, i - start});
        start = i;
      }
    }
  }

  // Buckets differ in size, so threads take them one at a time.
  std::vector<std::vector<int32_t>> kept_per_bucket(buckets.size());
  std::atomic<size_t> next{0};
  parallel_for(0, std::min<int64_t>(workers, static_cast<int64_t>(buckets.size())), workers, 1,
               [&](int64_t first, int64_t last) {
                 for (int64_t worker = first; worker < last; ++worker) {
                   for (size_t b = next++; b < buckets.size(); b = next++) {
                     const Bucket& bucket = buckets[b];
                     const size_t n = static_cast<size_t>(bucket.image);
                     suppress_bucket(per_image[n], order[n].data() + bucket.first, bucket.count, iou_threshold,
                                     max_detections, kept_per_bucket[b]);
                   }
                 }
               });

  std::vector<std::vector<int32_t>> kept_positions(static_cast<size_t>(batch));
  for (size_t b = 0; b < buckets.size(); ++b) {
    auto& k = kept_positions[static_cast<size_t>(buckets[b].image)];
    k.insert(k.end(), kept_per_bucket[b].begin(), kept_per_bucket[b].end());
  }
  std::vector<std::vector<Candidate>> kept(static_cast<size_t>(batch));
  for (int64_t n = 0; n < batch; ++n) {
    auto& positions = kept_positions[static_cast<size_t>(n)];
    std::sort(positions.begin(), positions.end());
    if (static_cast<int64_t>(positions.size()) > max_detections) positions.resize(static_cast<size_t>(max_detections));
    const std::vector<Candidate>& sorted = per_image[static_cast<size_t>(n)];
    for (const int32_t p : positions) kept[static_cast<size_t>(n)].push_back(sorted[static_cast<size_t>(p)]);
  }
  return kept;
}

void write_detections(const std::vector<std::vector<Candidate>>& kept, const InputGeometry* geometries,
                      const DetectionsView& out) {
  const int64_t slots = out.max_detections;
  std::fill(out.boxes, out.boxes + out.batch * slots * 4, 0.0f);
  std::fill(out.scores, out.scores + out.batch * slots, 0.0f);
  std::fill(out.classes, out.classes + out.batch * slots, 0);
  for (int64_t n = 0; n < out.batch; ++n) {
    const std::vector<Candidate>& k = kept[static_cast<size_t>(n)];
    for (size_t s = 0; s < k.size(); ++s) {
      const detail::Box box = geometries ? detail::map_to_source(k[s].box, geometries[n]) : k[s].box;
      float* dst = out.boxes + (n * slots + static_cast<int64_t>(s)) * 4;
      dst[0] = box.x1;
      dst[1] = box.y1;
      dst[2] = box.x2;
      dst[3] = box.y2;
      out.scores[n * slots + static_cast<int64_t>(s)] = k[s].score;
      out.classes[n * slots + static_cast<int64_t>(s)] = k[s].label;
    }
    out.valid[n] = static_cast<int32_t>(k.size());
  }
}

void check_threads(const char* op, int threads) {
  if (threads < 0) fail(op, ": threads must be >= 0 (0 means the default); got ", threads);
}

}  // namespace

void decode_dense_cpu(const DenseHeadView& head, const DenseDecodeParams& decode, const NmsParams& params,
                      const InputGeometry* geometries, const DetectionsView& out, int threads) {
  check_decode_dense_args(head, decode, params, out);
  check_geometries(geometries, head.batch, "decode_dense");
  check_threads("decode_dense", threads);

  const int64_t levels = static_cast<int64_t>(head.levels.size());
  const int64_t classes = head.classes;
  const bool has_centerness = head.levels[0].centerness != nullptr;
  const bool logits = decode.scores == ScoreKind::kLogits;
  const detail::SkipBounds bounds =
      detail::skip_bounds(params.score_threshold, decode.scores, has_centerness, decode.centerness);
  std::vector<int64_t> level_start(static_cast<size_t>(levels) + 1, 0);
  for (int64_t l = 0; l < levels; ++l) {
    const DenseLevelView& level = head.levels[static_cast<size_t>(l)];
    level_start[static_cast<size_t>(l) + 1] =
        level_start[static_cast<size_t>(l)] + classes * level.height * level.width;
  }
  const int64_t per_image = level_start.back();
  const TensorType type = head.type;
  const char* refused_rule = logits ? "logits may be infinite but not NaN" : "probabilities must be finite";

  auto scan = [&](int64_t first, int64_t last, ScanResult& result) {
    // Centerness sigmoids of the current (image, level), computed once per cell on first
    // use and shared by its classes; -1 marks one not computed yet.
    std::vector<float> centerness_scores;
    int64_t cached_image = -1, cached_level = -1;
    int64_t g = first;
    while (g < last) {
      // One run of cells of one (image, level, class) plane.
      const int64_t n = g / per_image, f = g % per_image;
      int64_t l = 0;
      while (level_start[static_cast<size_t>(l) + 1] <= f) ++l;
      const DenseLevelView& level = head.levels[static_cast<size_t>(l)];
      const int64_t cells = level.height * level.width;
      if (has_centerness && logits && (n != cached_image || l != cached_level)) {
        centerness_scores.assign(static_cast<size_t>(cells), -1.0f);
        cached_image = n;
        cached_level = l;
      }
      const int64_t k = (f - level_start[static_cast<size_t>(l)]) / cells;
      const int64_t plane_flat = level_start[static_cast<size_t>(l)] + k * cells;  // flat index of cell 0
      const int64_t plane_global = n * per_image + plane_flat;
      const int64_t first_cell = f - plane_flat;
      const int64_t end_cell = std::min(cells, last - plane_global);
      const float unit = decode.distance_units == DistanceUnits::kStrides ? level.stride : 1.0f;
      const int64_t score_base = (n * classes + k) * cells;
      const int64_t centerness_base = n * cells;
      const int64_t distance_base = n * 4 * cells;
      for (int64_t cell = first_cell; cell < end_cell; ++cell) {
        const int64_t position = plane_global + cell;
        // The centerness plane is checked once, with class 0.
        if (has_centerness && k == 0) {
          const float centerness_value = detail::load(level.centerness, type, centerness_base + cell);
          if (detail::is_nan(centerness_value) || (!logits && !detail::is_finite(centerness_value))) {
            result.problem.note(position, text("decode_dense: centerness of level ", l, " holds ", centerness_value,
                                               " at image ", n, ", row ", cell / level.width, ", column ",
                                               cell % level.width, "; ", refused_rule,
                                               ". The detector output is broken: check the engine and its input"));
            continue;
          }
        }
        const float value = detail::load(level.scores, type, score_base + cell);
        if (detail::is_nan(value) || (!logits && !detail::is_finite(value))) {
          result.problem.note(position, text("decode_dense: scores of level ", l, " hold ", value, " at image ", n,
                                             ", class ", k, ", row ", cell / level.width, ", column ",
                                             cell % level.width, "; ", refused_rule,
                                             ". The detector output is broken: check the engine and its input"));
          continue;
        }
        if (static_cast<double>(value) < bounds.logit) continue;
        const float centerness_value =
            has_centerness ? detail::load(level.centerness, type, centerness_base + cell) : 0.0f;
        if (detail::cannot_pass(value, centerness_value, bounds)) continue;
        const float class_score = logits ? detail::sigmoid(value) : value;
        float centerness_score = centerness_value;
        if (has_centerness && logits) {
          float& cached = centerness_scores[static_cast<size_t>(cell)];
          if (cached < 0.0f) cached = detail::sigmoid(centerness_value);
          centerness_score = cached;
        }
        const float score = detail::combine_scores(class_score, centerness_score, has_centerness, decode.centerness);
        if (!(score > params.score_threshold)) continue;
        const int64_t x = cell % level.width, y = cell / level.width;
        const float left = detail::load(level.distances, type, distance_base + cell);
        const float top = detail::load(level.distances, type, distance_base + cells + cell);
        const float right = detail::load(level.distances, type, distance_base + 2 * cells + cell);
        const float bottom = detail::load(level.distances, type, distance_base + 3 * cells + cell);
        const detail::Box box =
            detail::dense_box(x, y, level.stride, decode.cell_offset, unit, left, top, right, bottom);
        if (!detail::box_is_finite(box)) {
          result.problem.note(position, text("decode_dense: the box of a candidate is not finite (image ", n,
                                             ", level ", l, ", row ", y, ", column ", x, ", class ", k, ", score ",
                                             score, ", distances ", left, " ", top, " ", right, " ", bottom,
                                             "). The detector output is broken: check the engine and its input"));
          continue;
        }
        result.per_image[static_cast<size_t>(n)].push_back(
            Candidate{score, static_cast<int32_t>(plane_flat + cell), static_cast<int32_t>(k), box});
      }
      g = plane_global + end_cell;
    }
  };

  std::vector<std::vector<Candidate>> per_image_candidates =
      scan_all(head.batch, head.batch * per_image, threads, scan);
  const auto kept = select_and_suppress(per_image_candidates, params.pre_nms_top_k, params.iou_threshold,
                                        params.max_detections, params.class_agnostic, threads);
  write_detections(kept, geometries, out);
}

void decode_boxes_cpu(const BoxesView& input, const BoxesDecodeParams& decode, const NmsParams& params,
                      const InputGeometry* geometries, const DetectionsView& out, int threads) {
  check_decode_boxes_args(input, decode, params, out);
  check_geometries(geometries, input.batch, "decode_boxes");
  check_threads("decode_boxes", threads);

  const bool logits = decode.scores == ScoreKind::kLogits;
  const detail::SkipBounds bounds =
      detail::skip_bounds(params.score_threshold, decode.scores, false, CenternessMode::kGeometricMean);
  const int64_t classes = input.classes;
  const int64_t per_image = input.count * classes;

  auto scan = [&](int64_t first, int64_t last, ScanResult& result) {
    for (int64_t g = first; g < last; ++g) {
      // Scores are [N, M, K]: the flat index box * K + class is the position in the array.
      const float value = detail::load(input.scores, input.type, g);
      const int64_t n = g / per_image, f = g % per_image;
      if (detail::is_nan(value) || (!logits && !detail::is_finite(value))) {
        result.problem.note(g, text("decode_boxes: scores hold ", value, " at image ", n, ", box ", f / classes,
                                    ", class ", f % classes, "; ",
                                    logits ? "logits may be infinite but not NaN" : "probabilities must be finite",
                                    ". The detector output is broken: check the engine and its input"));
        continue;
      }
      if (detail::cannot_pass(value, 0.0f, bounds)) continue;
      const float score = logits ? detail::sigmoid(value) : value;
      if (!(score > params.score_threshold)) continue;
      const int64_t box_index = g / classes;  // n * M + m
      const float a = detail::load(input.boxes, input.type, box_index * 4);
      const float b = detail::load(input.boxes, input.type, box_index * 4 + 1);
      const float c = detail::load(input.boxes, input.type, box_index * 4 + 2);
      const float d = detail::load(input.boxes, input.type, box_index * 4 + 3);
      const detail::Box box = detail::decoded_box(a, b, c, d, decode.format);
      if (!detail::box_is_finite(box)) {
        result.problem.note(g, text("decode_boxes: the box of a candidate is not finite (image ", n, ", box ",
                                    f / classes, ", class ", f % classes, ", score ", score, ", values ", a, " ", b,
                                    " ", c, " ", d,
                                    "). The detector output is broken: check the engine and its input"));
        continue;
      }
      result.per_image[static_cast<size_t>(n)].push_back(
          Candidate{score, static_cast<int32_t>(f), static_cast<int32_t>(f % classes), box});
    }
  };

  std::vector<std::vector<Candidate>> per_image_candidates =
      scan_all(input.batch, input.batch * per_image, threads, scan);
  const auto kept = select_and_suppress(per_image_candidates, params.pre_nms_top_k, params.iou_threshold,
                                        params.max_detections, params.class_agnostic, threads);
  write_detections(kept, geometries, out);
}

int64_t nms_cpu(const NmsBoxesView& input, float iou_threshold, int64_t max_detections, int32_t* keep, int threads) {
  check_nms_args(input, iou_threshold, max_detections);
  check_threads("nms", threads);
  if (!keep) fail("nms: keep has no data pointer");

  std::vector<std::vector<Candidate>> candidates(1);
  candidates[0].reserve(static_cast<size_t>(input.count));
  for (int64_t i = 0; i < input.count; ++i) {
    const float score = input.scores[i];
    if (detail::is_nan(score)) fail("nms: scores[", i, "] is NaN; scores may be any number but NaN");
    const float* b = input.boxes + i * 4;
    const detail::Box box{b[0], b[1], b[2], b[3]};
    if (!detail::box_is_finite(box)) {
      fail("nms: boxes[", i, "] = (", b[0], ", ", b[1], ", ", b[2], ", ", b[3], ") is not finite");
    }
    candidates[0].push_back(Candidate{score, static_cast<int32_t>(i), input.classes ? input.classes[i] : 0, box});
  }
  const auto kept = select_and_suppress(candidates, std::max<int64_t>(1, input.count), iou_threshold, max_detections,
                                        input.classes == nullptr, threads);
  const std::vector<Candidate>& k = kept[0];
  for (int64_t s = 0; s < max_detections; ++s) {
    keep[s] = s < static_cast<int64_t>(k.size()) ? k[static_cast<size_t>(s)].flat : -1;
  }
  return static_cast<int64_t>(k.size());
}

}  // namespace radedge
