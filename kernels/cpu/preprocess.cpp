// CPU reference implementation of the fused preprocess op (see radedge/preprocess.h).
//
// Layout of the work: output content rows are split across threads. For each one, the
// vertical taps of its source rows (inside the crop) are gathered through the lookup table
// (or the float window) and summed into a float row of the crop's width; the horizontal
// taps then turn that row into the output row, which is normalised once per channel. Each
// output row is computed the same way whichever thread owns it, so the result does not
// depend on the thread count, and a batch (whose images' rows form one pool of work) writes
// each slot exactly as a call for that image alone would.
#include "radedge/preprocess.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <type_traits>

#include "radedge/parallel.h"

namespace radedge {

const char* output_type_name(OutputType type) {
  switch (type) {
    case OutputType::kFloat32: return "float32";
    case OutputType::kFloat16: return "float16";
  }
  return "unknown";
}

const char* pixel_type_name(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return "uint8";
    case PixelType::kUint16: return "uint16";
    case PixelType::kInt16: return "int16";
    case PixelType::kFloat32: return "float32";
  }
  return "unknown";
}

namespace {

// The exact letterbox arithmetic multiplies two sizes: kMaxImageSide keeps that in int64.
constexpr int64_t kMaxSize = kMaxImageSide;

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

}  // namespace

InputGeometry resize_geometry(int64_t source_rows, int64_t source_columns, int64_t height, int64_t width,
                              ResizeMode mode) {
  return resize_geometry(source_rows, source_columns, PixelRegion{0, 0, source_columns, source_rows}, height, width,
                         mode);
}

InputGeometry resize_geometry(int64_t source_rows, int64_t source_columns, const PixelRegion& crop, int64_t height,
                              int64_t width, ResizeMode mode) {
  if (source_rows < 1 || source_columns < 1 || source_rows > kMaxSize || source_columns > kMaxSize) {
    fail("resize_geometry: the source image must be 1 to ", kMaxSize, " pixels on each side; got ", source_rows,
         " rows x ", source_columns, " columns");
  }
  if (height < 1 || width < 1 || height > kMaxSize || width > kMaxSize) {
    fail("resize_geometry: the output must be 1 to ", kMaxSize, " pixels on each side; got height=", height,
         ", width=", width);
  }
  // Re-resolved so that a hand-made region is held to the same rule as a params crop.
  const PixelRegion region =
      resolve_region("resize_geometry", "crop", source_rows, source_columns, crop.x, crop.y, crop.width, crop.height);
  InputGeometry g;
  g.source_rows = source_rows;
  g.source_columns = source_columns;
  g.crop_x = region.x;
  g.crop_y = region.y;
  g.crop_width = region.width;
  g.crop_height = region.height;
  // The letterbox and the scales below are those of the crop, as if it were the image.
  source_rows = region.height;
  source_columns = region.width;
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
  g.input_height = height;
  g.input_width = width;
  return g;
}

PixelRegion resolve_crop(int64_t rows, int64_t columns, const PreprocessParams& params) {
  return resolve_region("preprocess", "crop", rows, columns, params.crop_x, params.crop_y, params.crop_width,
                        params.crop_height);
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
  if (pixels.type != PixelType::kUint8 && pixels.type != PixelType::kUint16 && pixels.type != PixelType::kInt16 &&
      pixels.type != PixelType::kFloat32) {
    fail("preprocess: pixels must be uint8, uint16, int16 or float32; got pixel type ", static_cast<int>(pixels.type));
  }
  if (pixels.rows > 1 && pixels.row_stride < pixels.columns) {
    fail("preprocess: the pixel row stride (", pixels.row_stride, " elements) is smaller than a row (",
         pixels.columns, " columns); pass a C-contiguous array (numpy.ascontiguousarray)");
  }
  if (pixels.data == nullptr) fail("preprocess: pixels has no data pointer");
  resolve_crop(pixels.rows, pixels.columns, params);

  if (pixels.type == PixelType::kFloat32) {
    if (lut.size != 0 || lut.data != nullptr) {
      fail("preprocess: float32 pixels are mapped by the float window (center ", params.float_window.center,
           ", width ", params.float_window.width, "), not by a lookup table; pass no lut (got one of ", lut.size,
           " entries)");
    }
    const FloatWindow& window = params.float_window;
    if (!std::isfinite(window.center) || !std::isfinite(window.width)) {
      fail("preprocess: the float window's center and width must be finite; got center ", window.center, ", width ",
           window.width);
    }
    if (!(window.width > 0.0)) {
      fail("preprocess: the float window's width must be > 0 (the span of input values mapped onto [0, 1]); got ",
           window.width);
    }
    // The window is evaluated in float32: it must stay finite and non-zero there too.
    const detail::FloatWindowConstants constants = detail::make_float_window(params);
    if (!std::isfinite(constants.low) || !std::isfinite(constants.width) || !(constants.width > 0.0f)) {
      fail("preprocess: the float window (center ", window.center, ", width ", window.width,
           ") does not fit in float32; give a width between 1e-30 and 1e30 and a center of similar size");
    }
  } else {
    if (lut.size < 1) fail("preprocess: lut is empty; it needs at least one entry");
    if (lut.first_value < std::numeric_limits<int32_t>::min() ||
        lut.first_value > std::numeric_limits<int32_t>::max()) {
      fail("preprocess: lut_first_value must be a stored value in the int32 range; got ", lut.first_value);
    }
    if (lut.data == nullptr) fail("preprocess: lut has no data pointer");
  }

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

FloatWindowConstants make_float_window(const PreprocessParams& params) {
  const FloatWindow& window = params.float_window;
  return FloatWindowConstants{static_cast<float>(window.center - window.width / 2.0),
                              static_cast<float>(window.width), window.invert};
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

// Pixel -> display value: a gather through the widened table for stored values...
template <typename Pixel>
struct Display {
  const float* table;  // indexed by the stored value itself
  float operator()(Pixel value) const { return table[value]; }
};

// ...and the float window, evaluated per pixel, for float32 values.
template <>
struct Display<float> {
  detail::FloatWindowConstants window;
  float operator()(float value) const { return detail::float_window_value(window, value); }
};

// acc[x] (+)= sum over the taps, left to right, of weight * display(row[x]), for up to four
// source rows per sweep so the accumulator row is loaded and stored once per four rows.
template <int kTaps, bool kFirst, typename Pixel>
void vertical_sweep(float* __restrict acc, const Pixel* const* rows, const float* weights, const Display<Pixel> display,
                    int64_t columns) {
  const Pixel* __restrict r0 = rows[0];
  const Pixel* __restrict r1 = rows[kTaps > 1 ? 1 : 0];
  const Pixel* __restrict r2 = rows[kTaps > 2 ? 2 : 0];
  const Pixel* __restrict r3 = rows[kTaps > 3 ? 3 : 0];
  const float w0 = weights[0];
  const float w1 = kTaps > 1 ? weights[1] : 0.0f;
  const float w2 = kTaps > 2 ? weights[2] : 0.0f;
  const float w3 = kTaps > 3 ? weights[3] : 0.0f;
  for (int64_t x = 0; x < columns; ++x) {
    float a = kFirst ? w0 * display(r0[x]) : acc[x] + w0 * display(r0[x]);
    if (kTaps > 1) a = a + w1 * display(r1[x]);
    if (kTaps > 2) a = a + w2 * display(r2[x]);
    if (kTaps > 3) a = a + w3 * display(r3[x]);
    acc[x] = a;
  }
}

template <bool kFirst, typename Pixel>
void vertical_sweep_n(int taps, float* acc, const Pixel* const* rows, const float* weights,
                      const Display<Pixel>& display, int64_t columns) {
  switch (taps) {
    case 1: vertical_sweep<1, kFirst>(acc, rows, weights, display, columns); break;
    case 2: vertical_sweep<2, kFirst>(acc, rows, weights, display, columns); break;
    case 3: vertical_sweep<3, kFirst>(acc, rows, weights, display, columns); break;
    default: vertical_sweep<4, kFirst>(acc, rows, weights, display, columns); break;
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

// One image ready to be written: its taps, its display mapping and where it goes. Its
// content rows are independent of each other, so any split of them across threads, and
// across the images of a batch, writes the same bits.
class ImageJob {
 public:
  virtual ~ImageJob() = default;
  // Writes content rows [first_row, last_row) and their share of the letterbox rows.
  virtual void rows(int64_t first_row, int64_t last_row) const = 0;
  int64_t content_rows() const { return geometry_.content_height; }
  // Roughly the operations one content row costs, to size the chunks given to threads.
  int64_t work_per_row() const { return work_per_row_; }
  const InputGeometry& geometry() const { return geometry_; }

 protected:
  InputGeometry geometry_;
  int64_t work_per_row_ = 1;
};

template <typename Pixel, typename Out>
class TypedImageJob final : public ImageJob {
 public:
  TypedImageJob(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                const PreprocessParams& params)
      : norm_(detail::make_normalisation(params)) {
    geometry_ = resize_geometry(pixels.rows, pixels.columns, resolve_crop(pixels.rows, pixels.columns, params),
                                params.height, params.width, params.resize);
    const InputGeometry& g = geometry_;
    const PixelsView crop = crop_view(pixels, PixelRegion{g.crop_x, g.crop_y, g.crop_width, g.crop_height});
    source_ = static_cast<const Pixel*>(crop.data);
    row_stride_ = crop.row_stride;
    row_taps_ = make_taps(detail::make_axis(g.crop_height, g.content_height));
    column_taps_ = make_taps(detail::make_axis(g.crop_width, g.content_width));
    if constexpr (std::is_same_v<Pixel, float>) {
      display_.window = detail::make_float_window(params);
    } else {
      widened_ = widen_lut<Pixel>(lut);
      display_.table = widened_.data() - int64_t{std::numeric_limits<Pixel>::min()};
    }
    channels_ = out.channels;
    height_ = out.height;
    width_ = out.width;
    slot_base_ = static_cast<Out*>(out.data) + slot * channels_ * height_ * width_;
    work_per_row_ = std::max<int64_t>(1, g.crop_width * row_taps_.max_taps + g.content_width * column_taps_.max_taps);
  }

  void rows(int64_t first_row, int64_t last_row) const override {
    const InputGeometry& g = geometry_;
    const auto output_row = [&](int64_t c, int64_t y) { return slot_base_ + (c * height_ + y) * width_; };
    // Letterbox rows above and below the content go with the content rows, pro rata.
    const int64_t pad_rows = height_ - g.content_height;
    const auto pad_row_index = [&](int64_t i) { return i < g.offset_y ? i : i + g.content_height; };
    for (int64_t i = first_row * pad_rows / g.content_height; i < last_row * pad_rows / g.content_height; ++i) {
      for (int64_t c = 0; c < channels_; ++c) fill(output_row(c, pad_row_index(i)), width_, norm_.pad[c]);
    }
    std::vector<float> acc(static_cast<size_t>(g.crop_width));
    std::vector<float> values(static_cast<size_t>(g.content_width));
    const Pixel* rows[4];
    for (int64_t y = first_row; y < last_row; ++y) {
      const int64_t first = row_taps_.first[static_cast<size_t>(y)];
      const int count = row_taps_.count[static_cast<size_t>(y)];
      const float* weights = &row_taps_.weights[static_cast<size_t>(y * row_taps_.max_taps)];
      for (int k = 0; k < count; k += 4) {
        const int taps = std::min(4, count - k);
        for (int t = 0; t < taps; ++t) rows[t] = source_ + (first + k + t) * row_stride_;
        if (k == 0) {
          vertical_sweep_n<true>(taps, acc.data(), rows, weights + k, display_, g.crop_width);
        } else {
          vertical_sweep_n<false>(taps, acc.data(), rows, weights + k, display_, g.crop_width);
        }
      }

      for (int64_t x = 0; x < g.content_width; ++x) {
        const float* w = &column_taps_.weights[static_cast<size_t>(x * column_taps_.max_taps)];
        const float* a = acc.data() + column_taps_.first[static_cast<size_t>(x)];
        const int taps = column_taps_.count[static_cast<size_t>(x)];
        float value = w[0] * a[0];
        for (int k = 1; k < taps; ++k) value = value + w[k] * a[k];
        values[static_cast<size_t>(x)] = value;
      }

      for (int64_t c = 0; c < channels_; ++c) {
        Out* dst = output_row(c, g.offset_y + y);
        fill(dst, g.offset_x, norm_.pad[c]);
        normalise(dst + g.offset_x, values.data(), g.content_width, norm_.mean[c], norm_.std[c]);
        fill(dst + g.offset_x + g.content_width, width_ - g.offset_x - g.content_width, norm_.pad[c]);
      }
    }
  }

 private:
  detail::Normalisation norm_;
  const Pixel* source_ = nullptr;  // the crop's top-left pixel
  int64_t row_stride_ = 0;
  TapTable row_taps_;
  TapTable column_taps_;
  std::vector<float> widened_;
  Display<Pixel> display_{};
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  Out* slot_base_ = nullptr;
};

template <typename Out>
std::unique_ptr<ImageJob> make_job_for_output(const PixelsView& pixels, const LutView& lut, const OutputView& out,
                                              int64_t slot, const PreprocessParams& params) {
  switch (pixels.type) {
    case PixelType::kUint8: return std::make_unique<TypedImageJob<uint8_t, Out>>(pixels, lut, out, slot, params);
    case PixelType::kUint16: return std::make_unique<TypedImageJob<uint16_t, Out>>(pixels, lut, out, slot, params);
    case PixelType::kInt16: return std::make_unique<TypedImageJob<int16_t, Out>>(pixels, lut, out, slot, params);
    case PixelType::kFloat32: return std::make_unique<TypedImageJob<float, Out>>(pixels, lut, out, slot, params);
  }
  fail("preprocess: unknown pixel type ", static_cast<int>(pixels.type));
}

// Arguments are checked by the caller.
std::unique_ptr<ImageJob> make_job(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                                   const PreprocessParams& params) {
  if (out.type == OutputType::kFloat32) return make_job_for_output<float>(pixels, lut, out, slot, params);
  return make_job_for_output<uint16_t>(pixels, lut, out, slot, params);
}

// Enough rows per chunk that starting a thread for it is worth it (a thread costs ~20 us).
int64_t min_rows_per_chunk(int64_t rows, int64_t work) {
  return std::max<int64_t>(1, (int64_t{1} << 16) * rows / std::max<int64_t>(1, work));
}

void check_threads(int threads) {
  if (threads < 0) fail("preprocess: threads must be >= 0 (0 means the default); got ", threads);
}

}  // namespace

InputGeometry preprocess_cpu(const PixelsView& pixels, const LutView& lut, const OutputView& out, int64_t slot,
                             const PreprocessParams& params, int threads) {
  check_preprocess_args(pixels, lut, out, slot, params);
  check_threads(threads);
  const std::unique_ptr<ImageJob> job = make_job(pixels, lut, out, slot, params);
  const int64_t rows = job->content_rows();
  parallel_for(0, rows, threads, min_rows_per_chunk(rows, rows * job->work_per_row()),
               [&](int64_t first_row, int64_t last_row) { job->rows(first_row, last_row); });
  return job->geometry();
}

void check_preprocess_batch_args(const std::vector<PreprocessItem>& items, const OutputView& out) {
  if (items.empty()) fail("preprocess_batch: no images; pass at least one");
  if (static_cast<int64_t>(items.size()) > out.batch) {
    fail("preprocess_batch: ", items.size(), " images do not fit in out's batch of ", out.batch,
         "; allocate out with N >= the number of images");
  }
  for (size_t i = 0; i < items.size(); ++i) {
    try {
      check_preprocess_args(items[i].pixels, items[i].lut, out, static_cast<int64_t>(i), items[i].params);
    } catch (const std::invalid_argument& error) {
      fail("preprocess_batch: image ", i, ": ", error.what());
    }
  }
}

std::vector<InputGeometry> preprocess_batch_cpu(const std::vector<PreprocessItem>& items, const OutputView& out,
                                                int threads) {
  check_preprocess_batch_args(items, out);
  check_threads(threads);
  std::vector<std::unique_ptr<ImageJob>> jobs;
  jobs.reserve(items.size());
  // first_rows[i]: where image i's content rows start in the batch's one range of rows.
  std::vector<int64_t> first_rows{0};
  int64_t work = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    jobs.push_back(make_job(items[i].pixels, items[i].lut, out, static_cast<int64_t>(i), items[i].params));
    first_rows.push_back(first_rows.back() + jobs.back()->content_rows());
    work += jobs.back()->content_rows() * jobs.back()->work_per_row();
  }
  const int64_t total_rows = first_rows.back();
  parallel_for(0, total_rows, threads, min_rows_per_chunk(total_rows, work), [&](int64_t first, int64_t last) {
    size_t image = static_cast<size_t>(std::upper_bound(first_rows.begin(), first_rows.end(), first) -
                                       first_rows.begin() - 1);
    while (first < last) {
      const int64_t end = std::min(last, first_rows[image + 1]);
      jobs[image]->rows(first - first_rows[image], end - first_rows[image]);
      first = end;
      ++image;
    }
  });
  std::vector<InputGeometry> geometries;
  geometries.reserve(jobs.size());
  for (const auto& job : jobs) geometries.push_back(job->geometry());
  return geometries;
}

}  // namespace radedge
