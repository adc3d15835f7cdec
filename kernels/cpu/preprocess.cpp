// CPU reference implementation of the fused preprocess op (see radedge/preprocess.h).
//
// Layout of the work: output content rows are split across threads. For each one, the
// vertical taps of its source rows are gathered through the lookup table and summed into
// a float row of the source width; the horizontal taps then turn that row into the output
// row, which is normalised once per channel. Each output row is computed the same way
// whichever thread owns it, so the result does not depend on the thread count.
#include "radedge/preprocess.h"

#include <cstring>
#include <limits>
#include <sstream>

#include "radedge/parallel.h"

namespace radedge {

const char* output_type_name(OutputType type) {
  switch (type) {
    case OutputType::kFloat32: return "float32";
    case OutputType::kFloat16: return "float16";
  }
  return "unknown";
}

namespace {

// Sizes are capped so that the exact letterbox arithmetic (products of two sizes) fits in
// int64 and device-side indices fit in int32; DICOM images are at most 65535 wide.
constexpr int64_t kMaxSize = int64_t{1} << 24;

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

}  // namespace

ResizeGeometry resize_geometry(int64_t source_rows, int64_t source_columns, int64_t height, int64_t width,
                               ResizeMode mode) {
  if (source_rows < 1 || source_columns < 1 || source_rows > kMaxSize || source_columns > kMaxSize) {
    fail("resize_geometry: the source image must be 1 to ", kMaxSize, " pixels on each side; got ", source_rows,
         " rows x ", source_columns, " columns");
  }
  if (height < 1 || width < 1 || height > kMaxSize || width > kMaxSize) {
    fail("resize_geometry: the output must be 1 to ", kMaxSize, " pixels on each side; got height=", height,
         ", width=", width);
  }
  ResizeGeometry g;
  g.source_rows = source_rows;
  g.source_columns = source_columns;
  if (mode == ResizeMode::kStretch) {
    g.content_height = height;
    g.content_width = width;
  } else if (mode == ResizeMode::kLetterbox) {
    // s = min(height / rows, width / columns); round(n * s) half up is
    // floor((2 * n * a + b) / (2 * b)) for s = a / b, exact in integers.
    if (height * source_columns <= width * source_rows) {
      g.content_height = height;
      g.content_width = std::max<int64_t>(1, (2 * source_columns * height + source_rows) / (2 * source_rows));
    } else {
      g.content_width = width;
      g.content_height = std::max<int64_t>(1, (2 * source_rows * width + source_columns) / (2 * source_columns));
    }
  } else {
    fail("resize_geometry: unknown resize mode ", static_cast<int>(mode), "; expected stretch or letterbox");
  }
  g.offset_y = (height - g.content_height) / 2;
  g.offset_x = (width - g.content_width) / 2;
  g.scale_y = static_cast<double>(g.content_height) / static_cast<double>(source_rows);
  g.scale_x = static_cast<double>(g.content_width) / static_cast<double>(source_columns);
  return g;
}

void check_preprocess_args(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                           const PreprocessParams& params) {
  if (params.height < 1 || params.width < 1 || params.height > kMaxSize || params.width > kMaxSize) {
    fail("preprocess: the model input size must be 1 to ", kMaxSize, " pixels on each side; got height=",
         params.height, ", width=", params.width);
  }
  if (params.channels != 1 && params.channels != 3) {
    fail("preprocess: channels must be 1 or 3 (the grey image replicated); got ", params.channels);
  }
  if (params.resize != ResizeMode::kStretch && params.resize != ResizeMode::kLetterbox) {
    fail("preprocess: resize must be stretch or letterbox; got mode ", static_cast<int>(params.resize));
  }
  if (!std::isfinite(params.pad_value)) {
    fail("preprocess: pad_value must be a finite number in the display domain; got ", params.pad_value);
  }
  const auto check_per_channel = [&](const std::vector<float>& values, const char* name, bool positive) {
    if (values.size() != 1 && static_cast<int64_t>(values.size()) != params.channels) {
      fail("preprocess: ", name, " needs 1 value (used for every channel) or ", params.channels,
           " (one per channel); got ", values.size());
    }
    for (const float value : values) {
      if (!std::isfinite(value) || (positive && !(value > 0.0f))) {
        fail("preprocess: every ", name, " value must be ", positive ? "finite and > 0" : "finite", "; got ", value);
      }
    }
  };
  check_per_channel(params.mean, "mean", false);
  check_per_channel(params.std, "std", true);

  if (pixels.rows < 1 || pixels.columns < 1) {
    fail("preprocess: pixels is empty (", pixels.rows, " rows x ", pixels.columns,
         " columns); an image needs at least one pixel");
  }
  if (pixels.rows > kMaxSize || pixels.columns > kMaxSize) {
    fail("preprocess: pixels must be at most ", kMaxSize, " pixels on each side; got ", pixels.rows, " x ",
         pixels.columns);
  }
  if (pixels.type != PixelType::kUint8 && pixels.type != PixelType::kUint16 && pixels.type != PixelType::kInt16) {
    fail("preprocess: pixels must be uint8, uint16 or int16; got pixel type ", static_cast<int>(pixels.type));
  }
  if (pixels.rows > 1 && pixels.row_stride < pixels.columns) {
    fail("preprocess: the pixel row stride (", pixels.row_stride, " elements) is smaller than a row (",
         pixels.columns, " columns); pass a C-contiguous array (numpy.ascontiguousarray)");
  }
  if (pixels.data == nullptr) fail("preprocess: pixels has no data pointer");

  if (lut.size < 1) fail("preprocess: lut is empty; it needs at least one entry");
  if (lut.first_value < std::numeric_limits<int32_t>::min() || lut.first_value > std::numeric_limits<int32_t>::max()) {
    fail("preprocess: lut_first_value must be a stored value in the int32 range; got ", lut.first_value);
  }
  if (lut.data == nullptr) fail("preprocess: lut has no data pointer");

  if (out.type != params.output_type) {
    fail("preprocess: out is ", output_type_name(out.type), " but the spec asks for ",
         output_type_name(params.output_type));
  }
  if (out.batch < 1 || out.channels != params.channels || out.height != params.height ||
      out.width != params.width) {
    fail("preprocess: out must be [N, ", params.channels, ", ", params.height, ", ", params.width,
         "] with N >= 1 to match the spec; got [", out.batch, ", ", out.channels, ", ", out.height, ", ", out.width,
         "]");
  }
  if (out.data == nullptr) fail("preprocess: out has no data pointer");
  if (slot < 0 || slot >= out.batch) {
    fail("preprocess: slot ", slot, " is outside the batch of ", out.batch, " (0 <= slot < ", out.batch, ")");
  }
}

namespace detail {

Normalisation make_normalisation(const PreprocessParams& params) {
  Normalisation n{};
  for (int64_t c = 0; c < 3; ++c) {
    n.mean[c] = params.mean.size() == 1 ? params.mean[0] : params.mean[c < params.channels ? c : 0];
    n.std[c] = params.std.size() == 1 ? params.std[0] : params.std[c < params.channels ? c : 0];
    n.pad[c] = (params.pad_value - n.mean[c]) / n.std[c];
  }
  return n;
}

}  // namespace detail

namespace {

// float -> IEEE binary16 bits, round to nearest even; overflow gives infinity, NaN stays
// NaN (checked against F16C's vcvtps2ph on all 2^32 inputs). Every case is computed and
// one is selected with masks, so the normalise loop vectorises with baseline SSE2 / NEON
// instead of needing F16C.
inline uint16_t float_to_half(float value) {
  int32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const int32_t sign = (bits >> 16) & 0x8000;
  const int32_t magnitude = bits & 0x7fffffff;
  // Below 2^-14 the result is subnormal: adding 0.5f aligns the 10 kept mantissa bits at
  // the bottom of the float, and the FPU's own round-to-nearest-even does the rounding.
  float magnitude_float;
  std::memcpy(&magnitude_float, &magnitude, sizeof magnitude_float);
  const float aligned = magnitude_float + 0.5f;
  int32_t aligned_bits;
  std::memcpy(&aligned_bits, &aligned, sizeof aligned_bits);
  const int32_t subnormal = aligned_bits - 0x3f000000;
  // Normal: rebias the exponent and add 0xfff plus the lowest kept bit, which rounds the
  // 13 dropped bits to nearest even; a carry into the exponent gives the right result,
  // up to infinity for values from 65520 on.
  const uint32_t unsigned_magnitude = static_cast<uint32_t>(magnitude);
  const int32_t normal =
      static_cast<int32_t>((unsigned_magnitude + 0xc8000fffu + ((unsigned_magnitude >> 13) & 1u)) >> 13);
  // From 65536 on: infinity, or a quiet NaN when the input is NaN.
  const int32_t special = 0x7c00 | (static_cast<int32_t>(magnitude > 0x7f800000) << 9);
  const int32_t is_special = -static_cast<int32_t>(magnitude >= 0x47800000);
  const int32_t is_subnormal = -static_cast<int32_t>(magnitude < 0x38800000);
  const int32_t finite = (subnormal & is_subnormal) | (normal & ~is_subnormal);
  return static_cast<uint16_t>((special & is_special) | (finite & ~is_special) | sign);
}

struct TapTable {
  std::vector<int32_t> first;
  std::vector<int32_t> count;
  std::vector<float> weights;  // [target][max_taps]
  int64_t max_taps = 1;
};

TapTable make_taps(const detail::Axis& axis) {
  TapTable table;
  table.max_taps = axis.max_taps;
  table.first.resize(static_cast<size_t>(axis.target_size));
  table.count.resize(static_cast<size_t>(axis.target_size));
  table.weights.assign(static_cast<size_t>(axis.target_size * axis.max_taps), 0.0f);
  for (int64_t i = 0; i < axis.target_size; ++i) {
    int64_t first = 0;
    const int64_t count = detail::axis_taps(axis, i, &first, &table.weights[static_cast<size_t>(i * axis.max_taps)]);
    table.first[static_cast<size_t>(i)] = static_cast<int32_t>(first);
    table.count[static_cast<size_t>(i)] = static_cast<int32_t>(count);
  }
  return table;
}

// The lookup table widened to every value the pixel type can hold, so the inner loop
// gathers without clamping: entry i is for stored value i + lowest.
template <typename Pixel>
std::vector<float> widen_lut(const LutView& lut) {
  constexpr int64_t lowest = std::numeric_limits<Pixel>::min();
  constexpr int64_t entries = int64_t{std::numeric_limits<Pixel>::max()} - lowest + 1;
  std::vector<float> table(static_cast<size_t>(entries));
  for (int64_t i = 0; i < entries; ++i) {
    const int64_t index = std::min(std::max<int64_t>(i + lowest - lut.first_value, 0), lut.size - 1);
    table[static_cast<size_t>(i)] = lut.data[index];
  }
  return table;
}

// acc[x] (+)= sum over the taps, left to right, of weight * table[row[x]], for up to four
// source rows per sweep so the accumulator row is loaded and stored once per four rows.
template <int kTaps, bool kFirst, typename Pixel>
void vertical_sweep(float* __restrict acc, const Pixel* const* rows, const float* weights,
                    const float* __restrict table, int64_t columns) {
  const Pixel* __restrict r0 = rows[0];
  const Pixel* __restrict r1 = rows[kTaps > 1 ? 1 : 0];
  const Pixel* __restrict r2 = rows[kTaps > 2 ? 2 : 0];
  const Pixel* __restrict r3 = rows[kTaps > 3 ? 3 : 0];
  const float w0 = weights[0];
  const float w1 = kTaps > 1 ? weights[1] : 0.0f;
  const float w2 = kTaps > 2 ? weights[2] : 0.0f;
  const float w3 = kTaps > 3 ? weights[3] : 0.0f;
  for (int64_t x = 0; x < columns; ++x) {
    float a = kFirst ? w0 * table[r0[x]] : acc[x] + w0 * table[r0[x]];
    if (kTaps > 1) a = a + w1 * table[r1[x]];
    if (kTaps > 2) a = a + w2 * table[r2[x]];
    if (kTaps > 3) a = a + w3 * table[r3[x]];
    acc[x] = a;
  }
}

template <bool kFirst, typename Pixel>
void vertical_sweep_n(int taps, float* acc, const Pixel* const* rows, const float* weights, const float* table,
                      int64_t columns) {
  switch (taps) {
    case 1: vertical_sweep<1, kFirst>(acc, rows, weights, table, columns); break;
    case 2: vertical_sweep<2, kFirst>(acc, rows, weights, table, columns); break;
    case 3: vertical_sweep<3, kFirst>(acc, rows, weights, table, columns); break;
    default: vertical_sweep<4, kFirst>(acc, rows, weights, table, columns); break;
  }
}

inline void store(float* dst, float value) { *dst = value; }
inline void store(uint16_t* dst, float value) { *dst = float_to_half(value); }

template <typename Out>
void fill(Out* dst, int64_t count, float value) {
  for (int64_t i = 0; i < count; ++i) store(dst + i, value);
}

template <typename Out>
void normalise(Out* __restrict dst, const float* __restrict values, int64_t count, float mean, float std) {
  for (int64_t i = 0; i < count; ++i) store(dst + i, (values[i] - mean) / std);
}

template <typename Pixel, typename Out>
void run(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
         const ResizeGeometry& g, const detail::Normalisation& norm, int threads) {
  const TapTable row_taps = make_taps(detail::make_axis(g.source_rows, g.content_height));
  const TapTable column_taps = make_taps(detail::make_axis(g.source_columns, g.content_width));
  const std::vector<float> widened = widen_lut<Pixel>(lut);
  const float* table = widened.data() - int64_t{std::numeric_limits<Pixel>::min()};

  const Pixel* source = static_cast<const Pixel*>(pixels.data);
  const int64_t row_stride = pixels.rows > 1 ? pixels.row_stride : pixels.columns;
  const int64_t channels = out.channels, height = out.height, width = out.width;
  Out* const slot_base = static_cast<Out*>(out.data) + slot * channels * height * width;
  const auto output_row = [&](int64_t c, int64_t y) { return slot_base + (c * height + y) * width; };

  const int64_t pad_rows = height - g.content_height;
  const auto pad_row_index = [&](int64_t i) { return i < g.offset_y ? i : i + g.content_height; };

  // Enough rows per thread that starting it is worth it (a thread costs ~20 us).
  const int64_t work_per_row = g.source_columns * row_taps.max_taps + g.content_width * column_taps.max_taps;
  const int64_t min_rows = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, work_per_row));

  parallel_for(0, g.content_height, threads, min_rows, [&](int64_t first_row, int64_t last_row) {
    // Letterbox rows above and below the content go with the content rows, pro rata.
    for (int64_t i = first_row * pad_rows / g.content_height; i < last_row * pad_rows / g.content_height; ++i) {
      for (int64_t c = 0; c < channels; ++c) fill(output_row(c, pad_row_index(i)), width, norm.pad[c]);
    }
    std::vector<float> acc(static_cast<size_t>(g.source_columns));
    std::vector<float> values(static_cast<size_t>(g.content_width));
    const Pixel* rows[4];
    for (int64_t y = first_row; y < last_row; ++y) {
      const int64_t first = row_taps.first[static_cast<size_t>(y)];
      const int count = row_taps.count[static_cast<size_t>(y)];
      const float* weights = &row_taps.weights[static_cast<size_t>(y * row_taps.max_taps)];
      for (int k = 0; k < count; k += 4) {
        const int taps = std::min(4, count - k);
        for (int t = 0; t < taps; ++t) rows[t] = source + (first + k + t) * row_stride;
        if (k == 0) {
          vertical_sweep_n<true>(taps, acc.data(), rows, weights + k, table, g.source_columns);
        } else {
          vertical_sweep_n<false>(taps, acc.data(), rows, weights + k, table, g.source_columns);
        }
      }

      for (int64_t x = 0; x < g.content_width; ++x) {
        const float* w = &column_taps.weights[static_cast<size_t>(x * column_taps.max_taps)];
        const float* a = acc.data() + column_taps.first[static_cast<size_t>(x)];
        const int taps = column_taps.count[static_cast<size_t>(x)];
        float value = w[0] * a[0];
        for (int k = 1; k < taps; ++k) value = value + w[k] * a[k];
        values[static_cast<size_t>(x)] = value;
      }

      for (int64_t c = 0; c < channels; ++c) {
        Out* dst = output_row(c, g.offset_y + y);
        fill(dst, g.offset_x, norm.pad[c]);
        normalise(dst + g.offset_x, values.data(), g.content_width, norm.mean[c], norm.std[c]);
        fill(dst + g.offset_x + g.content_width, width - g.offset_x - g.content_width, norm.pad[c]);
      }
    }
  });
}

template <typename Pixel>
void run_for_output(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                    const ResizeGeometry& g, const detail::Normalisation& norm, int threads) {
  if (out.type == OutputType::kFloat32) {
    run<Pixel, float>(pixels, lut, out, slot, g, norm, threads);
  } else {
    run<Pixel, uint16_t>(pixels, lut, out, slot, g, norm, threads);
  }
}

}  // namespace

ResizeGeometry preprocess_cpu(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                              const PreprocessParams& params, int threads) {
  check_preprocess_args(pixels, lut, out, slot, params);
  if (threads < 0) fail("preprocess: threads must be >= 0 (0 means the default); got ", threads);
  const ResizeGeometry g = resize_geometry(pixels.rows, pixels.columns, params.height, params.width, params.resize);
  const detail::Normalisation norm = detail::make_normalisation(params);
  switch (pixels.type) {
    case PixelType::kUint8: run_for_output<uint8_t>(pixels, lut, out, slot, g, norm, threads); break;
    case PixelType::kUint16: run_for_output<uint16_t>(pixels, lut, out, slot, g, norm, threads); break;
    case PixelType::kInt16: run_for_output<int16_t>(pixels, lut, out, slot, g, norm, threads); break;
  }
  return g;
}

}  // namespace radedge
