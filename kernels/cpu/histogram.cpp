// CPU implementation of the histogram op (see radedge/histogram.h).
//
// The region's rows are split across threads. Each thread looks every pixel's bin up in a
// table over all values of the pixel type (padding goes to one spare bin that is never
// reported) and counts into four interleaved sub-histograms, so that a run of equal
// values (flat background, padding) does not serialise on one counter.
#include "radedge/histogram.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <sstream>
#include <vector>

#include "radedge/parallel.h"

namespace radedge {
namespace {

constexpr int64_t kMaxBins = 65536;

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

// bins_of[v - lowest]: the bin of stored value v; `bins` (one past the last) for padding.
template <typename Pixel>
std::vector<uint32_t> bin_table(int64_t bins, const HistogramParams& params) {
  constexpr int64_t lowest = std::numeric_limits<Pixel>::min();
  constexpr int64_t entries = int64_t{std::numeric_limits<Pixel>::max()} - lowest + 1;
  std::vector<uint32_t> table(static_cast<size_t>(entries));
  for (int64_t i = 0; i < entries; ++i) {
    const int64_t value = i + lowest;
    const bool padding = params.skip_padding && params.padding_low <= value && value <= params.padding_high;
    const int64_t bin = std::min(std::max<int64_t>(value - params.first_value, 0), bins - 1);
    table[static_cast<size_t>(i)] = static_cast<uint32_t>(padding ? bins : bin);
  }
  return table;
}

template <typename Pixel>
void count(const PixelsView& region, const HistogramView& counts, const HistogramParams& params, int threads) {
  constexpr int kLanes = 4;
  const int64_t bins = counts.bins;
  const int64_t lane_size = bins + 1;  // + the padding bin
  const std::vector<uint32_t> table = bin_table<Pixel>(bins, params);
  const uint32_t* bin_of = table.data() - int64_t{std::numeric_limits<Pixel>::min()};
  const Pixel* source = static_cast<const Pixel*>(region.data);
  const int64_t columns = region.columns;

  std::vector<int64_t> totals(static_cast<size_t>(bins), 0);
  std::mutex totals_mutex;
  // A chunk pays for clearing and adding up its sub-histograms: give it enough pixels.
  const int64_t min_rows = std::max<int64_t>(1, ((int64_t{1} << 18) + 8 * bins) / columns);
  parallel_for(0, region.rows, threads, min_rows, [&](int64_t first_row, int64_t last_row) {
    std::vector<uint32_t> lanes(static_cast<size_t>(kLanes * lane_size), 0);
    std::vector<int64_t> sums(static_cast<size_t>(bins), 0);
    uint32_t* lane0 = lanes.data();
    uint32_t* lane1 = lane0 + lane_size;
    uint32_t* lane2 = lane1 + lane_size;
    uint32_t* lane3 = lane2 + lane_size;
    const auto flush = [&] {
      for (int64_t b = 0; b < bins; ++b) {
        sums[static_cast<size_t>(b)] += int64_t{lane0[b]} + lane1[b] + lane2[b] + lane3[b];
      }
      std::fill(lanes.begin(), lanes.end(), 0u);
    };
    // A uint32 counter cannot overflow before this many pixels have been counted.
    constexpr int64_t kFlushAt = std::numeric_limits<uint32_t>::max();
    int64_t unflushed = 0;
    for (int64_t y = first_row; y < last_row; ++y) {
      if (unflushed + columns > kFlushAt) {
        flush();
        unflushed = 0;
      }
      const Pixel* row = source + y * region.row_stride;
      int64_t x = 0;
      for (; x + kLanes <= columns; x += kLanes) {
        ++lane0[bin_of[row[x]]];
        ++lane1[bin_of[row[x + 1]]];
        ++lane2[bin_of[row[x + 2]]];
        ++lane3[bin_of[row[x + 3]]];
      }
      for (; x < columns; ++x) ++lane0[bin_of[row[x]]];
      unflushed += columns;
    }
    flush();
    const std::lock_guard<std::mutex> lock(totals_mutex);
    for (int64_t b = 0; b < bins; ++b) totals[static_cast<size_t>(b)] += sums[static_cast<size_t>(b)];
  });
  std::copy(totals.begin(), totals.end(), counts.counts);
}

}  // namespace

void check_histogram_args(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params) {
  if (pixels.type != PixelType::kUint8 && pixels.type != PixelType::kUint16 && pixels.type != PixelType::kInt16) {
    fail("histogram: pixels must be uint8, uint16 or int16 stored values; got ", pixel_type_name(pixels.type),
         " (float32 pixels have no stored values to count)");
  }
  if (pixels.rows < 1 || pixels.columns < 1) {
    fail("histogram: pixels is empty (", pixels.rows, " rows x ", pixels.columns,
         " columns); an image needs at least one pixel");
  }
  if (pixels.rows > kMaxImageSide || pixels.columns > kMaxImageSide) {
    fail("histogram: pixels must be at most ", kMaxImageSide, " pixels on each side; got ", pixels.rows, " x ",
         pixels.columns);
  }
  if (pixels.rows > 1 && pixels.row_stride < pixels.columns) {
    fail("histogram: the pixel row stride (", pixels.row_stride, " elements) is smaller than a row (", pixels.columns,
         " columns); pass a C-contiguous array (numpy.ascontiguousarray)");
  }
  if (pixels.data == nullptr) fail("histogram: pixels has no data pointer");
  if (counts.bins < 1 || counts.bins > kMaxBins) {
    fail("histogram: counts must have 1 to ", kMaxBins, " bins (one per stored value of the table's range); got ",
         counts.bins);
  }
  if (counts.counts == nullptr) fail("histogram: counts has no data pointer");
  if (params.first_value < std::numeric_limits<int32_t>::min() ||
      params.first_value > std::numeric_limits<int32_t>::max()) {
    fail("histogram: first_value must be a stored value in the int32 range; got ", params.first_value);
  }
  resolve_region("histogram", "region", pixels.rows, pixels.columns, params.region_x, params.region_y,
                 params.region_width, params.region_height);
  if (params.skip_padding && params.padding_low > params.padding_high) {
    fail("histogram: the padding range is empty (low ", params.padding_low, " > high ", params.padding_high,
         "); give low <= high, or no padding");
  }
}

void histogram_cpu(const PixelsView& pixels, const HistogramView& counts, const HistogramParams& params, int threads) {
  check_histogram_args(pixels, counts, params);
  if (threads < 0) fail("histogram: threads must be >= 0 (0 means the default); got ", threads);
  const PixelRegion region = resolve_region("histogram", "region", pixels.rows, pixels.columns, params.region_x,
                                            params.region_y, params.region_width, params.region_height);
  const PixelsView view = crop_view(pixels, region);
  switch (pixels.type) {
    case PixelType::kUint8: count<uint8_t>(view, counts, params, threads); break;
    case PixelType::kUint16: count<uint16_t>(view, counts, params, threads); break;
    case PixelType::kInt16: count<int16_t>(view, counts, params, threads); break;
    case PixelType::kFloat32: break;  // refused by check_histogram_args
  }
}

}  // namespace radedge
