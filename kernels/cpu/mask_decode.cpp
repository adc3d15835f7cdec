// CPU implementation of the mask decode op (see radedge/mask_decode.h).
//
// Layout of the work. First, one byte per logit says which label the cell rule may use
// there (detail::point_code), computed in parallel over logit rows while every logit is
// checked for NaN and infinity, so nothing is written when that check fails. Then output
// rows are split across threads. The mapping is monotonic, so the output columns of one
// logit cell form a contiguous span, and an output row is a handful of segments: runs of
// cells that share one label, written with memset and tallied in closed form, and cells
// that straddle a boundary, interpolated pixel by pixel. Output rows that fall in the same
// row of cells share their segments. Tallies are integers and the per-thread run lists
// are joined in row order, so nothing depends on the thread count.
#include "radedge/mask_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "radedge/parallel.h"

namespace radedge {

const char* logit_type_name(LogitType type) {
  switch (type) {
    case LogitType::kFloat32: return "float32";
    case LogitType::kFloat16: return "float16";
  }
  return "unknown";
}

namespace {

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

}  // namespace

int64_t mask_label_count(Activation activation, int64_t channels) {
  return activation == Activation::kSoftmax ? channels - 1 : channels;
}

void check_mask_decode_args(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                            const MaskView& mask, const RunsView& runs) {
  if (logits.type != LogitType::kFloat32 && logits.type != LogitType::kFloat16) {
    fail("mask_decode: logits must be float32 or float16; got logit type ", static_cast<int>(logits.type));
  }
  if (logits.batch < 1 || logits.channels < 1 || logits.height < 1 || logits.width < 1) {
    fail("mask_decode: logits must be [N, C, h, w] with every size >= 1; got [", logits.batch, ", ", logits.channels,
         ", ", logits.height, ", ", logits.width, "]");
  }
  if (logits.height > kMaxMaskSide || logits.width > kMaxMaskSide) {
    fail("mask_decode: a logit plane must be at most ", kMaxMaskSide, " x ", kMaxMaskSide, "; got ", logits.height,
         " x ", logits.width);
  }
  if (logits.data == nullptr) fail("mask_decode: logits has no data pointer");
  if (image < 0 || image >= logits.batch) {
    fail("mask_decode: image ", image, " is outside the batch of ", logits.batch, " (0 <= image < ", logits.batch,
         ")");
  }

  if (params.activation == Activation::kSigmoid) {
    if (logits.channels > kMaxMaskLabel) {
      fail("mask_decode: a sigmoid head can have at most ", kMaxMaskLabel, " channels (labels 1..", kMaxMaskLabel,
           " in a uint8 mask); got ", logits.channels);
    }
    const size_t count = params.thresholds.size();
    if (count != 1 && static_cast<int64_t>(count) != logits.channels) {
      fail("mask_decode: a sigmoid head needs 1 threshold (used for every channel) or ", logits.channels,
           " (one per channel); got ", count);
    }
    for (const double threshold : params.thresholds) {
      if (!(threshold >= 0.0 && threshold <= 1.0)) {
        fail("mask_decode: thresholds are probabilities and must be in [0, 1]; got ", threshold);
      }
    }
  } else if (params.activation == Activation::kSoftmax) {
    if (logits.channels < 2 || logits.channels > kMaxMaskLabel + 1) {
      fail("mask_decode: a softmax head needs 2 to ", kMaxMaskLabel + 1,
           " channels (background first, then one per label); got ", logits.channels);
    }
    if (!params.thresholds.empty()) {
      fail("mask_decode: a softmax head takes the argmax and no thresholds; got ", params.thresholds.size(),
           " (pass none)");
    }
  } else {
    fail("mask_decode: activation must be sigmoid or softmax; got activation ", static_cast<int>(params.activation));
  }

  check_geometry(params.geometry, "mask_decode");

  const bool no_spacing = params.row_spacing_mm == 0.0 && params.column_spacing_mm == 0.0;
  const auto usable = [](double mm) { return std::isfinite(mm) && mm > 0.0; };
  if (!no_spacing && !(usable(params.row_spacing_mm) && usable(params.column_spacing_mm))) {
    fail("mask_decode: the pixel spacing must be two finite values > 0 (row, column, in mm), or both 0 when it is "
         "unknown; got row ",
         params.row_spacing_mm, " mm, column ", params.column_spacing_mm, " mm");
  }

  if (mask.height < 1 || mask.width < 1 || mask.height > kMaxMaskSide || mask.width > kMaxMaskSide) {
    fail("mask_decode: the mask must be 1 to ", kMaxMaskSide, " pixels on each side; got ", mask.height, " x ",
         mask.width);
  }
  if (mask.data == nullptr) fail("mask_decode: mask has no data pointer");

  if (runs.capacity < 0) {
    fail("mask_decode: the run capacity must be >= 0 (0: no run-length encoding); got ", runs.capacity);
  }
  if (runs.capacity > 0 && runs.data == nullptr) fail("mask_decode: runs has a capacity but no data pointer");
}

namespace detail {

MaskAxis make_mask_axis(const GeometryAxis& geometry, int64_t logits_size, int64_t output_size) {
  MaskAxis axis;
  axis.source_per_output = static_cast<double>(geometry.source_size) / static_cast<double>(output_size);
  axis.crop_start = static_cast<double>(geometry.crop_start);
  axis.crop_end = static_cast<double>(geometry.crop_start + geometry.crop_size);
  axis.content_per_crop = static_cast<double>(geometry.content_size) / static_cast<double>(geometry.crop_size);
  axis.content_offset = static_cast<double>(geometry.content_offset);
  axis.logits_per_input = static_cast<double>(logits_size) / static_cast<double>(geometry.input_size);
  axis.logits_size = logits_size;
  return axis;
}

MaskRule make_mask_rule(const MaskDecodeParams& params, int64_t channels) {
  MaskRule rule{};
  rule.activation = params.activation;
  rule.channels = static_cast<int32_t>(channels);
  if (params.activation == Activation::kSigmoid) {
    for (int64_t c = 0; c < channels; ++c) {
      const double p = params.thresholds[params.thresholds.size() == 1 ? 0 : static_cast<size_t>(c)];
      // log(0) = -inf: every pixel qualifies; log(1 / 0) = +inf: none does.
      rule.logit_threshold[c] = static_cast<float>(std::log(p / (1.0 - p)));
    }
  }
  return rule;
}

}  // namespace detail

std::vector<LabelStats> mask_label_stats(const LabelTally* tallies, int64_t label_count,
                                         const MaskDecodeParams& params, const MaskView& mask) {
  const InputGeometry& g = params.geometry;
  const bool has_spacing = params.row_spacing_mm > 0.0 && params.column_spacing_mm > 0.0;
  // An output pixel covers source_rows / height source rows and source_columns / width
  // source columns.
  const double pixel_area_mm2 =
      has_spacing ? (params.row_spacing_mm * static_cast<double>(g.source_rows) / static_cast<double>(mask.height)) *
                        (params.column_spacing_mm * static_cast<double>(g.source_columns) /
                         static_cast<double>(mask.width))
                  : std::nan("");
  std::vector<LabelStats> stats(static_cast<size_t>(label_count));
  for (int64_t k = 0; k < label_count; ++k) {
    const LabelTally& t = tallies[k];
    LabelStats& s = stats[static_cast<size_t>(k)];
    s.pixel_count = static_cast<int64_t>(t.pixel_count);
    s.area_mm2 = has_spacing ? static_cast<double>(t.pixel_count) * pixel_area_mm2 : std::nan("");
    if (t.pixel_count == 0) {
      s.centroid[0] = s.centroid[1] = std::nan("");
      continue;
    }
    const double count = static_cast<double>(t.pixel_count);
    s.bbox[0] = static_cast<int64_t>(t.min_x);
    s.bbox[1] = static_cast<int64_t>(t.min_y);
    s.bbox[2] = static_cast<int64_t>(t.max_x) + 1;
    s.bbox[3] = static_cast<int64_t>(t.max_y) + 1;
    s.centroid[0] = static_cast<double>(t.sum_x) / count + 0.5;
    s.centroid[1] = static_cast<double>(t.sum_y) / count + 0.5;
  }
  return stats;
}

namespace {

struct AxisTable {
  std::vector<int32_t> cell;     // first logit index of the cell, -1 outside the crop
  std::vector<float> fraction;   // weight of the cell's second logit
  int64_t first_inside = 0;      // output pixels [first_inside, last_inside) are in the crop
  int64_t last_inside = 0;
};

AxisTable make_table(const detail::MaskAxis& axis, int64_t output_size) {
  AxisTable table;
  table.cell.resize(static_cast<size_t>(output_size));
  table.fraction.resize(static_cast<size_t>(output_size));
  table.first_inside = output_size;
  for (int64_t i = 0; i < output_size; ++i) {
    const int32_t cell = detail::mask_axis_sample(axis, i, &table.fraction[static_cast<size_t>(i)]);
    table.cell[static_cast<size_t>(i)] = cell;
    if (cell >= 0) {
      table.first_inside = std::min(table.first_inside, i);
      table.last_inside = i + 1;
    }
  }
  if (table.first_inside == output_size) table.first_inside = table.last_inside = 0;
  return table;
}

// A piece of an output row: columns [begin, end) with one label, or detail::kMixedCell
// for pixels to interpolate one by one.
struct Segment {
  int32_t begin;
  int32_t end;
  uint8_t label;
};

void append(std::vector<Segment>& segments, int64_t begin, int64_t end, uint8_t label) {
  if (begin >= end) return;
  if (!segments.empty() && segments.back().label == label && segments.back().end == begin) {
    segments.back().end = static_cast<int32_t>(end);
  } else {
    segments.push_back(Segment{static_cast<int32_t>(begin), static_cast<int32_t>(end), label});
  }
}

struct Run {
  uint32_t value;
  uint32_t length;
};

// The runs of a stretch of consecutive pixels. Only the first `limit` are kept, enough to
// fill the output buffer: a stored run is complete once a later one starts, and a stretch
// with more runs than that fills the buffer by itself. The rest are counted, and the last
// one is remembered so that the next stretch can continue it.
class RunList {
 public:
  explicit RunList(int64_t limit) : limit_(limit) {}

  void push(uint8_t value, int64_t length) {
    if (count_ > 0 && last_.value == value) {
      last_.length += static_cast<uint32_t>(length);
      if (count_ == static_cast<int64_t>(stored_.size())) stored_.back().length = last_.length;
      return;
    }
    ++count_;
    last_ = Run{value, static_cast<uint32_t>(length)};
    if (static_cast<int64_t>(stored_.size()) < limit_) stored_.push_back(last_);
  }

  int64_t count() const { return count_; }
  const std::vector<Run>& stored() const { return stored_; }
  const Run& last() const { return last_; }

 private:
  int64_t limit_;
  int64_t count_ = 0;
  std::vector<Run> stored_;
  Run last_{0, 0};
};

inline void tally_span(LabelTally& t, int64_t y, int64_t begin, int64_t end) {
  const auto n = static_cast<unsigned long long>(end - begin);
  t.pixel_count += n;
  // begin + (begin + 1) + ... + (end - 1); one of the two factors is even.
  t.sum_x += n * static_cast<unsigned long long>(begin + end - 1) / 2;
  t.sum_y += n * static_cast<unsigned long long>(y);
  t.min_x = std::min<unsigned long long>(t.min_x, static_cast<unsigned long long>(begin));
  t.max_x = std::max<unsigned long long>(t.max_x, static_cast<unsigned long long>(end - 1));
  t.min_y = std::min<unsigned long long>(t.min_y, static_cast<unsigned long long>(y));
  t.max_y = std::max<unsigned long long>(t.max_y, static_cast<unsigned long long>(y));
}

// What one thread produced for its rows.
struct Chunk {
  std::vector<LabelTally> tallies;
  RunList runs;
};

// A float32 copy of logits[image] (only for float16 logits) and its point codes; throws
// std::invalid_argument when a logit is NaN or infinite.
struct PreparedLogits {
  const float* values = nullptr;  // [C, h, w]
  std::vector<float> converted;
  std::vector<uint8_t> codes;  // [h, w]
};

template <typename T>
int64_t prepare_rows(const T* source, float* converted, uint8_t* codes, int64_t channels, int64_t plane,
                     int64_t width, int64_t first_row, int64_t last_row, const detail::MaskRule& rule) {
  int64_t non_finite = 0;
  const int64_t begin = first_row * width, end = last_row * width;
  for (int64_t c = 0; c < channels; ++c) {
    const T* in = source + c * plane;
    for (int64_t i = begin; i < end; ++i) {
      const float value = detail::load_logit(in + i);
      if (converted != nullptr) converted[c * plane + i] = value;
      non_finite += std::isfinite(value) ? 0 : 1;
    }
  }
  for (int64_t i = begin; i < end; ++i) codes[i] = detail::point_code(source, plane, i, rule);
  return non_finite;
}

PreparedLogits prepare(const LogitsView& logits, int64_t image, const detail::MaskRule& rule, int threads) {
  const int64_t channels = logits.channels, height = logits.height, width = logits.width;
  const int64_t plane = height * width;
  PreparedLogits prepared;
  prepared.codes.resize(static_cast<size_t>(plane));
  if (logits.type == LogitType::kFloat16) prepared.converted.resize(static_cast<size_t>(channels * plane));
  const int64_t offset = image * channels * plane;
  std::mutex mutex;
  int64_t non_finite = 0;
  const int64_t min_rows = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, width * channels));
  parallel_for(0, height, threads, min_rows, [&](int64_t first_row, int64_t last_row) {
    int64_t found = 0;
    if (logits.type == LogitType::kFloat32) {
      found = prepare_rows(static_cast<const float*>(logits.data) + offset, nullptr, prepared.codes.data(), channels,
                           plane, width, first_row, last_row, rule);
    } else {
      found = prepare_rows(static_cast<const uint16_t*>(logits.data) + offset, prepared.converted.data(),
                           prepared.codes.data(), channels, plane, width, first_row, last_row, rule);
    }
    std::lock_guard<std::mutex> lock(mutex);
    non_finite += found;
  });
  if (non_finite > 0) {
    fail("mask_decode: logits of image ", image, " hold ", non_finite,
         " NaN or infinite values; the model or its input is broken, so no mask can be decoded");
  }
  prepared.values = logits.type == LogitType::kFloat32 ? static_cast<const float*>(logits.data) + offset
                                                       : prepared.converted.data();
  return prepared;
}

}  // namespace

MaskDecodeResult mask_decode_cpu(const LogitsView& logits, int64_t image, const MaskDecodeParams& params,
                                 const MaskView& mask, const RunsView& runs, int threads) {
  check_mask_decode_args(logits, image, params, mask, runs);
  if (threads < 0) fail("mask_decode: threads must be >= 0 (0 means the default); got ", threads);

  const detail::MaskRule rule = detail::make_mask_rule(params, logits.channels);
  const PreparedLogits prepared = prepare(logits, image, rule, threads);

  const int64_t h = logits.height, w = logits.width, plane = h * w;
  const int64_t height = mask.height, width = mask.width;
  const AxisTable columns = make_table(detail::make_mask_axis(x_axis(params.geometry), w, width), width);
  const AxisTable rows = make_table(detail::make_mask_axis(y_axis(params.geometry), h, height), height);

  // The cells output columns fall in, [first_cell, last_cell), and for each cell c the first
  // output column in cell c or later, so cells [a, b) cover columns
  // [first_column[a], first_column[b]) (empty when no column falls in them).
  const int64_t first_cell = columns.first_inside < columns.last_inside
                                 ? columns.cell[static_cast<size_t>(columns.first_inside)]
                                 : 0;
  const int64_t last_cell = columns.first_inside < columns.last_inside
                                ? columns.cell[static_cast<size_t>(columns.last_inside - 1)] + 1
                                : 0;
  std::vector<int32_t> first_column(static_cast<size_t>(std::max<int64_t>(w, 2)));
  for (int64_t c = 0, x = columns.first_inside; c < static_cast<int64_t>(first_column.size()); ++c) {
    while (x < columns.last_inside && columns.cell[static_cast<size_t>(x)] < c) ++x;
    first_column[static_cast<size_t>(c)] = static_cast<int32_t>(x);
  }

  const int64_t label_count = mask_label_count(params.activation, logits.channels);
  const bool encode = runs.capacity > 0;
  // A mask never has more runs than pixels.
  const int64_t capacity = std::min<int64_t>(runs.capacity, height * width);

  std::mutex mutex;
  std::map<int64_t, Chunk> chunks;  // by first row, so they join in row order
  const int64_t min_rows = std::max<int64_t>(1, (int64_t{1} << 16) / width);
  parallel_for(0, height, threads, min_rows, [&](int64_t first_row, int64_t last_row) {
    Chunk chunk{std::vector<LabelTally>(static_cast<size_t>(label_count), detail::empty_tally()),
                RunList(encode ? capacity : 0)};
    std::vector<Segment> segments;
    std::vector<uint8_t> cell_labels(static_cast<size_t>(last_cell));
    int64_t segments_cell_row = -1;
    for (int64_t y = first_row; y < last_row; ++y) {
      uint8_t* row = mask.data + y * width;
      const int32_t cell_row = rows.cell[static_cast<size_t>(y)];
      if (cell_row < 0) {
        std::memset(row, 0, static_cast<size_t>(width));
        if (encode) chunk.runs.push(0, width);
        continue;
      }
      const int64_t y0 = cell_row, y1 = std::min<int64_t>(y0 + 1, h - 1);
      if (y0 != segments_cell_row) {
        // Label every cell of the row (a branch-free byte loop the compiler vectorises), then
        // turn runs of equal labels into segments.
        const uint8_t* top = prepared.codes.data() + y0 * w;
        const uint8_t* bottom = prepared.codes.data() + y1 * w;
        const int64_t neighbour = w > 1 ? 1 : 0;
        for (int64_t x0 = first_cell; x0 < last_cell; ++x0) {
          cell_labels[static_cast<size_t>(x0)] =
              detail::cell_label(top[x0], top[x0 + neighbour], bottom[x0], bottom[x0 + neighbour]);
        }
        segments.clear();
        append(segments, 0, columns.first_inside, 0);
        for (int64_t a = first_cell; a < last_cell;) {
          const uint8_t label = cell_labels[static_cast<size_t>(a)];
          int64_t b = a + 1;
          while (b < last_cell && cell_labels[static_cast<size_t>(b)] == label) ++b;
          append(segments, first_column[static_cast<size_t>(a)], first_column[static_cast<size_t>(b)], label);
          a = b;
        }
        append(segments, columns.last_inside, width, 0);
        segments_cell_row = y0;
      }
      const float fy = rows.fraction[static_cast<size_t>(y)];
      for (const Segment& segment : segments) {
        if (segment.label != detail::kMixedCell) {
          std::memset(row + segment.begin, segment.label, static_cast<size_t>(segment.end - segment.begin));
          if (segment.label != 0) tally_span(chunk.tallies[segment.label - 1], y, segment.begin, segment.end);
          if (encode) chunk.runs.push(segment.label, segment.end - segment.begin);
          continue;
        }
        for (int64_t x = segment.begin; x < segment.end; ++x) {
          const int64_t x0 = columns.cell[static_cast<size_t>(x)], x1 = std::min<int64_t>(x0 + 1, w - 1);
          const uint8_t label = detail::interpolated_label(prepared.values, plane, w, x0, x1, y0, y1,
                                                           columns.fraction[static_cast<size_t>(x)], fy, rule);
          row[x] = label;
          if (label != 0) tally_span(chunk.tallies[label - 1], y, x, x + 1);
          if (encode) chunk.runs.push(label, 1);
        }
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    chunks.emplace(first_row, std::move(chunk));
  });

  std::vector<LabelTally> tallies(static_cast<size_t>(label_count), detail::empty_tally());
  for (const auto& entry : chunks) {
    for (int64_t k = 0; k < label_count; ++k) {
      LabelTally& total = tallies[static_cast<size_t>(k)];
      const LabelTally& part = entry.second.tallies[static_cast<size_t>(k)];
      total.pixel_count += part.pixel_count;
      total.sum_x += part.sum_x;
      total.sum_y += part.sum_y;
      total.min_x = std::min(total.min_x, part.min_x);
      total.min_y = std::min(total.min_y, part.min_y);
      total.max_x = std::max(total.max_x, part.max_x);
      total.max_y = std::max(total.max_y, part.max_y);
    }
  }

  MaskDecodeResult result;
  result.labels = mask_label_stats(tallies.data(), label_count, params, mask);
  if (!encode) return result;

  // Join the chunks' runs: a chunk's first run continues the previous chunk's last one
  // when their values match. Runs a chunk counted but did not keep come after `capacity`
  // runs of that chunk alone, so they are only counted here too.
  int64_t total = 0;
  uint32_t last_value = 0;
  for (const auto& entry : chunks) {
    const RunList& list = entry.second.runs;
    for (const Run& run : list.stored()) {
      if (total > 0 && run.value == last_value) {
        if (total <= capacity) runs.data[2 * (total - 1) + 1] += run.length;
        continue;
      }
      ++total;
      last_value = run.value;
      if (total <= capacity) {
        runs.data[2 * (total - 1)] = run.value;
        runs.data[2 * (total - 1) + 1] = run.length;
      }
    }
    const int64_t unstored = list.count() - static_cast<int64_t>(list.stored().size());
    if (unstored > 0) {
      total += unstored;
      last_value = list.last().value;
    }
  }
  result.run_count = total;
  return result;
}

}  // namespace radedge
