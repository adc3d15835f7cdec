// CPU reference implementation of the heatmap peaks op (see radedge/heatmap_peaks.h).
//
// Each (image, channel) map is handled whole by one thread: candidates are collected in
// raster order, the best K are picked with a partial sort under the op's total order, and
// only those K are refined and mapped. Maps are split across threads, so the result does
// not depend on the thread count.
#include "radedge/heatmap_peaks.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "radedge/parallel.h"

namespace radedge {

namespace {

constexpr const char* kOp = "heatmap_peaks";

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  message << kOp << ": ";
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

// The smallest float >= value, so that `raw >= value` (in float64) is `raw >= this` in float.
float float_at_or_above(double value) {
  float rounded = static_cast<float>(value);
  if (static_cast<double>(rounded) < value) rounded = std::nextafter(rounded, std::numeric_limits<float>::infinity());
  return rounded;
}

struct Candidate {
  float value;
  uint32_t index;  // y * width + x in the whole grid
};

}  // namespace

void check_heatmap_peaks_args(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params) {
  if (heatmaps.type != MapType::kFloat32 && heatmaps.type != MapType::kFloat16) {
    fail("heatmaps must be float32 or float16; got map type ", static_cast<int>(heatmaps.type));
  }
  if (heatmaps.batch < 1 || heatmaps.channels < 1 || heatmaps.height < 1 || heatmaps.width < 1) {
    fail("heatmaps must be [N, C, h, w] with every size >= 1; got [", heatmaps.batch, ", ", heatmaps.channels, ", ",
         heatmaps.height, ", ", heatmaps.width, "]");
  }
  // Raster indices travel as uint32 and maps are counted in int32 on the device.
  constexpr int64_t kMaxCount = std::numeric_limits<int32_t>::max();
  if (heatmaps.height > kMaxGridSize || heatmaps.width > kMaxGridSize ||
      heatmaps.height * heatmaps.width > kMaxCount || heatmaps.batch > kMaxCount / heatmaps.channels) {
    fail("heatmaps of [", heatmaps.batch, ", ", heatmaps.channels, ", ", heatmaps.height, ", ", heatmaps.width,
         "] are too large: h * w and N * C must each be below 2^31");
  }
  if (heatmaps.data == nullptr) fail("heatmaps has no data pointer");

  if (params.mode != PeakMode::kLocalMaxima && params.mode != PeakMode::kArgmax) {
    fail("mode must be local maxima or argmax; got mode ", static_cast<int>(params.mode));
  }
  if (params.activation != PeakActivation::kNone && params.activation != PeakActivation::kSigmoid) {
    fail("activation must be 'none' or 'sigmoid'; got activation ", static_cast<int>(params.activation));
  }
  if (params.max_peaks < 1 || params.max_peaks > kMaxPeaks) {
    fail("k (peaks per channel) must be 1 to ", kMaxPeaks, "; got ", params.max_peaks);
  }
  if (params.mode == PeakMode::kArgmax && params.max_peaks != 1) {
    fail("argmax mode finds one peak per channel, so k must be 1; got ", params.max_peaks);
  }
  if (params.radius < 1 || params.radius > kMaxPeakRadius) {
    fail("radius must be 1 to ", kMaxPeakRadius, " cells (the local-maximum window is 2r+1 cells wide); got ",
         params.radius);
  }
  if (params.mode == PeakMode::kLocalMaxima) {
    const int64_t count = static_cast<int64_t>(params.threshold.size());
    if (count != 1 && count != heatmaps.channels) {
      fail("threshold needs 1 value (used for every channel) or ", heatmaps.channels, " (one per channel); got ",
           count);
    }
    if (count > kMaxPeakThresholds) {
      fail("at most ", kMaxPeakThresholds, " per-channel thresholds are supported; got ", count,
           ". Pass one threshold for every channel, or split the channels");
    }
    for (const double value : params.threshold) {
      if (!std::isfinite(value)) fail("every threshold must be finite; got ", value);
      if (params.activation == PeakActivation::kSigmoid && !(value >= 0.0 && value < 1.0)) {
        fail("with sigmoid activation a threshold is a probability in [0, 1) (1 would keep nothing); got ", value);
      }
    }
  }
  check_geometry(params.geometry, kOp);

  if (peaks.batch != heatmaps.batch || peaks.channels != heatmaps.channels || peaks.max_peaks != params.max_peaks) {
    fail("the outputs must be [", heatmaps.batch, ", ", heatmaps.channels, ", ", params.max_peaks,
         "] (N, C, k) to match heatmaps and k; got [", peaks.batch, ", ", peaks.channels, ", ", peaks.max_peaks, "]");
  }
  if (peaks.x == nullptr || peaks.y == nullptr || peaks.score == nullptr || peaks.valid == nullptr) {
    fail("an output (x, y, score or valid) has no data pointer");
  }
}

void check_heatmaps_finite(const HeatmapsView& heatmaps, const char* op) {
  const int64_t total = heatmaps.batch * heatmaps.channels * heatmaps.height * heatmaps.width;
  int64_t first_bad = -1;
  float bad_value = 0.0f;
  // Branch-free passes over the exponent bits (all ones: infinity or NaN), which
  // vectorise; the position is looked for only on failure.
  if (heatmaps.type == MapType::kFloat32) {
    const float* values = static_cast<const float*>(heatmaps.data);
    uint32_t any_bad = 0;
    for (int64_t i = 0; i < total; ++i) {
      uint32_t bits;
      std::memcpy(&bits, values + i, sizeof bits);
      any_bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (any_bad) {
      first_bad = std::find_if(values, values + total, [](float v) { return !std::isfinite(v); }) - values;
      bad_value = values[first_bad];
    }
  } else {
    const uint16_t* values = static_cast<const uint16_t*>(heatmaps.data);
    uint32_t any_bad = 0;
    for (int64_t i = 0; i < total; ++i) any_bad |= static_cast<uint32_t>((values[i] & 0x7c00u) == 0x7c00u);
    if (any_bad) {
      first_bad = std::find_if(values, values + total, [](uint16_t v) { return (v & 0x7c00u) == 0x7c00u; }) - values;
      bad_value = half_to_float(values[first_bad]);
    }
  }
  if (first_bad < 0) return;
  const int64_t x = first_bad % heatmaps.width;
  const int64_t y = first_bad / heatmaps.width % heatmaps.height;
  const int64_t c = first_bad / (heatmaps.width * heatmaps.height) % heatmaps.channels;
  const int64_t n = first_bad / (heatmaps.width * heatmaps.height * heatmaps.channels);
  std::ostringstream message;
  message << op << ": heatmaps[" << n << ", " << c << ", " << y << ", " << x << "] is " << bad_value
          << "; a head's output must be finite (a float16 engine that overflows gives inf: check its precision)";
  throw std::invalid_argument(message.str());
}

namespace detail {

PeakConstants make_peak_constants(const HeatmapsView& heatmaps, const HeatmapPeaksParams& params) {
  PeakConstants k{};
  if (params.mode == PeakMode::kArgmax) {
    k.threshold_count = 1;
    k.raw_threshold[0] = -std::numeric_limits<float>::infinity();
  } else {
    k.threshold_count = static_cast<int64_t>(params.threshold.size());
    for (int64_t c = 0; c < k.threshold_count; ++c) {
      const double threshold = params.threshold[static_cast<size_t>(c)];
      double raw = threshold;
      if (params.activation == PeakActivation::kSigmoid) {
        // sigmoid(v) >= t  <=>  v >= logit(t), decided on the raw value so that no float
        // rounding of the score can move a peak across the threshold.
        raw = threshold > 0.0 ? std::log(threshold / (1.0 - threshold)) : -std::numeric_limits<double>::infinity();
      }
      k.raw_threshold[c] = float_at_or_above(raw);
    }
  }
  const InputGeometry& g = params.geometry;
  k.input_per_cell_x = static_cast<double>(g.input_width) / static_cast<double>(heatmaps.width);
  k.input_per_cell_y = static_cast<double>(g.input_height) / static_cast<double>(heatmaps.height);
  k.x = x_axis(g);
  k.y = y_axis(g);
  k.cells = content_cells(g, heatmaps.height, heatmaps.width);
  return k;
}

}  // namespace detail

namespace {

// Whether any of values[0, count) is >= bound, or > bound: branch-free passes that
// vectorise, so that a row with nothing to look at costs a few cycles per four cells.
bool any_at_least(const float* values, int64_t count, float bound) {
  uint32_t any = 0;
  for (int64_t i = 0; i < count; ++i) any |= static_cast<uint32_t>(values[i] >= bound);
  return any != 0;
}

bool any_above(const float* values, int64_t count, float bound) {
  uint32_t any = 0;
  for (int64_t i = 0; i < count; ++i) any |= static_cast<uint32_t>(values[i] > bound);
  return any != 0;
}

struct RowMajorLoad {
  const float* values;
  int64_t width;
  float operator()(int64_t y, int64_t x) const { return values[y * width + x]; }
};

// Collects the candidates of one map, in raster order.
void local_maxima(const float* values, int64_t width, const detail::PeakConstants& k, float raw_threshold,
                  int64_t radius, std::vector<Candidate>* candidates) {
  const RowMajorLoad load{values, width};
  const ContentCells& cells = k.cells;
  for (int64_t y = cells.first_y; y < cells.last_y; ++y) {
    const float* row = values + y * width;
    // The threshold rejects most cells of a heatmap, most rows whole, before a window is read.
    if (!any_at_least(row + cells.first_x, cells.width(), raw_threshold)) continue;
    for (int64_t x = cells.first_x; x < cells.last_x; ++x) {
      const float value = row[x];
      if (!(value >= raw_threshold)) continue;
      if (detail::is_local_maximum(load, y, x, value, radius, cells)) {
        candidates->push_back({value, static_cast<uint32_t>(y * width + x)});
      }
    }
  }
}

void argmax(const float* values, int64_t width, const detail::PeakConstants& k, std::vector<Candidate>* candidates) {
  const ContentCells& cells = k.cells;
  if (cells.width() <= 0 || cells.height() <= 0) return;
  Candidate best{values[cells.first_y * width + cells.first_x],
                 static_cast<uint32_t>(cells.first_y * width + cells.first_x)};
  for (int64_t y = cells.first_y; y < cells.last_y; ++y) {
    const float* row = values + y * width;
    if (!any_above(row + cells.first_x, cells.width(), best.value)) continue;
    for (int64_t x = cells.first_x; x < cells.last_x; ++x) {
      // Strictly greater: the first cell in raster order wins a tie.
      if (row[x] > best.value) best = {row[x], static_cast<uint32_t>(y * width + x)};
    }
  }
  candidates->push_back(best);
}

void decode_map(const float* values, int64_t width, int64_t channel, const HeatmapPeaksParams& params,
                const detail::PeakConstants& k, std::vector<Candidate>* candidates, float* x_out, float* y_out,
                float* score_out, int32_t* valid_out) {
  candidates->clear();
  if (params.mode == PeakMode::kArgmax) {
    argmax(values, width, k, candidates);
  } else {
    const float raw_threshold = k.raw_threshold[k.threshold_count == 1 ? 0 : channel];
    local_maxima(values, width, k, raw_threshold, params.radius, candidates);
  }
  const int64_t count = std::min<int64_t>(params.max_peaks, static_cast<int64_t>(candidates->size()));
  std::partial_sort(candidates->begin(), candidates->begin() + count, candidates->end(),
                    [](const Candidate& a, const Candidate& b) {
                      return detail::ranks_before(a.value, a.index, b.value, b.index);
                    });

  const bool sigmoid = params.activation == PeakActivation::kSigmoid;
  const auto fit_value = [&](int64_t y, int64_t x) {
    const double raw = static_cast<double>(values[y * width + x]);
    return sigmoid ? detail::sigmoid(raw) : raw;
  };
  const ContentCells& cells = k.cells;
  for (int64_t i = 0; i < count; ++i) {
    const Candidate& peak = (*candidates)[static_cast<size_t>(i)];
    const int64_t y = peak.index / width, x = peak.index % width;
    const double centre = fit_value(y, x);
    double dx = 0.0, dy = 0.0;
    if (params.refine) {
      if (x - 1 >= cells.first_x && x + 1 < cells.last_x) {
        dx = detail::quadratic_offset(fit_value(y, x - 1), centre, fit_value(y, x + 1));
      }
      if (y - 1 >= cells.first_y && y + 1 < cells.last_y) {
        dy = detail::quadratic_offset(fit_value(y - 1, x), centre, fit_value(y + 1, x));
      }
    }
    x_out[i] = static_cast<float>(detail::cell_to_source(x, dx, k.input_per_cell_x, k.x));
    y_out[i] = static_cast<float>(detail::cell_to_source(y, dy, k.input_per_cell_y, k.y));
    score_out[i] = static_cast<float>(centre);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = count; i < params.max_peaks; ++i) x_out[i] = y_out[i] = score_out[i] = nan;
  *valid_out = static_cast<int32_t>(count);
}

}  // namespace

void heatmap_peaks_cpu(const HeatmapsView& heatmaps, const PeaksView& peaks, const HeatmapPeaksParams& params,
                       int threads) {
  check_heatmap_peaks_args(heatmaps, peaks, params);
  if (threads < 0) fail("threads must be >= 0 (0 means the default); got ", threads);
  check_heatmaps_finite(heatmaps, kOp);
  const detail::PeakConstants k = detail::make_peak_constants(heatmaps, params);

  const int64_t maps = heatmaps.batch * heatmaps.channels;
  const int64_t plane = heatmaps.height * heatmaps.width;
  const int64_t K = params.max_peaks;
  // Enough maps per thread that starting it is worth it: a thread costs ~20 us, and a
  // float32 map is scanned at a few cells per ns.
  const int64_t min_maps = std::max<int64_t>(1, (int64_t{1} << 18) / plane);
  parallel_for(0, maps, threads, min_maps, [&](int64_t first, int64_t last) {
    std::vector<float> converted;
    std::vector<Candidate> candidates;
    for (int64_t m = first; m < last; ++m) {
      const float* values;
      if (heatmaps.type == MapType::kFloat32) {
        values = static_cast<const float*>(heatmaps.data) + m * plane;
      } else {
        // Converted once per map, so the window reads below are plain float loads.
        const uint16_t* halves = static_cast<const uint16_t*>(heatmaps.data) + m * plane;
        converted.resize(static_cast<size_t>(plane));
        for (int64_t i = 0; i < plane; ++i) converted[static_cast<size_t>(i)] = half_to_float(halves[i]);
        values = converted.data();
      }
      decode_map(values, heatmaps.width, m % heatmaps.channels, params, k, &candidates,
                 peaks.x + m * K, peaks.y + m * K, peaks.score + m * K, peaks.valid + m);
    }
  });
}

}  // namespace radedge
