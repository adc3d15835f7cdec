// CPU reference implementation of the CAM overlay op (see radedge/cam_overlay.h), and the
// built-in colour maps.
//
// Display rows are split across threads. For each row, the vertical taps are applied once
// to a whole CAM row (w values); each display pixel then needs only the horizontal pair,
// computed a run of columns at a time (the columns between the same two CAM cells). The
// colour index of each pixel is found in vector loops, and the pixel itself read from a
// table of every (index, grey level) blend. Min-max normalisation first finds the range
// from the ends of each run. Every pixel is computed the same way whichever thread owns it.
#include "radedge/cam_overlay.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>
#include <vector>

#include "radedge/parallel.h"

namespace radedge {

namespace {

constexpr const char* kOp = "cam_overlay";

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  message << kOp << ": ";
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

constexpr double clamp_unit(double value) { return value < 0.0 ? 0.0 : (value > 1.0 ? 1.0 : value); }
constexpr uint8_t to_byte(double unit) { return static_cast<uint8_t>(clamp_unit(unit) * 255.0 + 0.5); }
constexpr double absolute(double value) { return value < 0.0 ? -value : value; }

// Coefficients of 1, t, t^2, t^3, t^4, t^5 per channel, from Google's published GLSL
// approximation of Turbo (kRedVec4 / kRedVec2 and so on), evaluated as it does:
// dot((1, t, t^2, t^3), vec4) + dot((t^4, t^5), vec2).
constexpr double kTurbo[3][6] = {
    {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943},
    {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604},
    {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973},
};

constexpr Colormap make_turbo() {
  Colormap map{};
  for (int i = 0; i < 256; ++i) {
    const double t = static_cast<double>(i) / 255.0;
    const double t2 = t * t, t3 = t2 * t;
    for (int c = 0; c < 3; ++c) {
      const double* k = kTurbo[c];
      const double value = (k[0] + k[1] * t + k[2] * t2 + k[3] * t3) + (k[4] * (t2 * t2) + k[5] * (t3 * t2));
      map.rgb[i][c] = to_byte(value);
    }
  }
  return map;
}

constexpr Colormap make_jet() {
  Colormap map{};
  for (int i = 0; i < 256; ++i) {
    const double t = static_cast<double>(i) / 255.0;
    for (int c = 0; c < 3; ++c) map.rgb[i][c] = to_byte(1.5 - absolute(4.0 * t - (3.0 - c)));
  }
  return map;
}

constexpr Colormap kTurboColormap = make_turbo();
constexpr Colormap kJetColormap = make_jet();

}  // namespace

const Colormap& builtin_colormap(ColormapName name) {
  switch (name) {
    case ColormapName::kTurbo: return kTurboColormap;
    case ColormapName::kJet: return kJetColormap;
  }
  fail("unknown colour map ", static_cast<int>(name), "; built in: turbo, jet");
}

void check_cam_overlay_args(const CamView& cam, const DisplayView& display, const OverlayView& out,
                            const CamOverlayParams& params) {
  if (cam.type != MapType::kFloat32 && cam.type != MapType::kFloat16) {
    fail("cam must be float32 or float16; got map type ", static_cast<int>(cam.type));
  }
  if (cam.height < 1 || cam.width < 1 || cam.height > kMaxGridSize || cam.width > kMaxGridSize ||
      cam.height * cam.width > std::numeric_limits<int32_t>::max()) {
    fail("cam must be [h, w] with 1 to ", kMaxGridSize, " cells on each side and fewer than 2^31 in all; got [",
         cam.height, ", ", cam.width, "]");
  }
  if (cam.data == nullptr) fail("cam has no data pointer");
  if (display.rows < 1 || display.columns < 1 || display.rows > kMaxGridSize || display.columns > kMaxGridSize) {
    fail("display must be [H, W] with 1 to ", kMaxGridSize, " pixels on each side; got [", display.rows, ", ",
         display.columns, "]");
  }
  if (display.data == nullptr) fail("display has no data pointer");
  if (out.rows != display.rows || out.columns != display.columns) {
    fail("out must be [", display.rows, ", ", display.columns, ", 3] to match the display; got [", out.rows, ", ",
         out.columns, ", 3]");
  }
  if (out.data == nullptr) fail("out has no data pointer");
  // Rows of the display are read while rows of out are written, by other threads too.
  const uintptr_t display_first = reinterpret_cast<uintptr_t>(display.data);
  const uintptr_t out_first = reinterpret_cast<uintptr_t>(out.data);
  const uintptr_t display_bytes = static_cast<uintptr_t>(display.rows * display.columns);
  if (display_first < out_first + 3 * display_bytes && out_first < display_first + display_bytes) {
    fail("out overlaps the display image; write the overlay into a separate array");
  }
  check_geometry(params.geometry, kOp);
  if (params.normalise != CamNormalise::kMinMax && params.normalise != CamNormalise::kFixed) {
    fail("normalise must be min-max or fixed; got ", static_cast<int>(params.normalise));
  }
  if (params.normalise == CamNormalise::kFixed &&
      (!(std::fabs(params.low) <= kMaxCamMagnitude) || !(std::fabs(params.high) <= kMaxCamMagnitude) ||
       !(params.low < params.high))) {
    fail("a fixed normalisation range needs finite low < high, each within +-", kMaxCamMagnitude, "; got low=",
         params.low, ", high=", params.high);
  }
  if (!(params.alpha >= 0.0 && params.alpha <= 1.0)) fail("alpha must be in [0, 1]; got ", params.alpha);
  if (!(params.floor >= 0.0 && params.floor <= 1.0)) {
    fail("floor must be in [0, 1] (normalised CAM values below it are not coloured); got ", params.floor);
  }
}

void check_cam_finite(const CamView& cam, const char* op) {
  const int64_t total = cam.height * cam.width;
  for (int64_t i = 0; i < total; ++i) {
    const float value = cam.type == MapType::kFloat32 ? static_cast<const float*>(cam.data)[i]
                                                      : half_to_float(static_cast<const uint16_t*>(cam.data)[i]);
    if (!(std::fabs(value) <= kMaxCamMagnitude)) {
      std::ostringstream message;
      message << op << ": cam[" << i / cam.width << ", " << i % cam.width << "] is " << value
              << "; a class activation map must be finite and within +-" << kMaxCamMagnitude
              << " (a float16 engine that overflows gives inf: check its precision)";
      throw std::invalid_argument(message.str());
    }
  }
}

namespace detail {

CamConstants make_cam_constants(const CamView& cam, const DisplayView& display, const CamOverlayParams& params) {
  CamConstants k{};
  const InputGeometry& p = params.geometry;
  k.content_per_display_x = static_cast<double>(p.content_width) / static_cast<double>(display.columns);
  k.content_per_display_y = static_cast<double>(p.content_height) / static_cast<double>(display.rows);
  k.offset_x = static_cast<double>(p.offset_x);
  k.offset_y = static_cast<double>(p.offset_y);
  k.cam_per_input_x = static_cast<double>(cam.width) / static_cast<double>(p.input_width);
  k.cam_per_input_y = static_cast<double>(cam.height) / static_cast<double>(p.input_height);
  k.alpha255 = static_cast<int32_t>(params.alpha * 255.0 + 0.5);
  k.floor = static_cast<float>(params.floor);
  if (static_cast<double>(k.floor) < params.floor) k.floor = std::nextafter(k.floor, 2.0f);
  k.min_max = params.normalise == CamNormalise::kMinMax;
  k.low = params.low;
  k.high = params.high;
  k.colormap = params.colormap;
  return k;
}

}  // namespace detail

namespace {

// Where the display columns sample the CAM: per column the weight towards the second
// cell, and the runs of columns that lie between the same two cells, so that a row is
// sampled by loops over contiguous weights with the two cell values fixed.
struct ColumnTaps {
  struct Run {
    int64_t begin, end;
    int32_t first, second;
  };
  std::vector<float> weights;
  std::vector<Run> runs;
};

ColumnTaps make_column_taps(const CamView& cam, const DisplayView& display, const detail::CamConstants& k) {
  ColumnTaps taps;
  taps.weights.resize(static_cast<size_t>(display.columns));
  for (int64_t v = 0; v < display.columns; ++v) {
    const detail::CamTap tap = detail::cam_tap(v, k.content_per_display_x, k.offset_x, k.cam_per_input_x, cam.width);
    taps.weights[static_cast<size_t>(v)] = tap.weight;
    if (taps.runs.empty() || taps.runs.back().first != tap.first || taps.runs.back().second != tap.second) {
      taps.runs.push_back({v, v, tap.first, tap.second});
    }
    taps.runs.back().end = v + 1;
  }
  return taps;
}

std::vector<detail::CamTap> make_row_taps(const CamView& cam, const DisplayView& display,
                                          const detail::CamConstants& k) {
  std::vector<detail::CamTap> taps(static_cast<size_t>(display.rows));
  for (int64_t u = 0; u < display.rows; ++u) {
    taps[static_cast<size_t>(u)] = detail::cam_tap(u, k.content_per_display_y, k.offset_y, k.cam_per_input_y, cam.height);
  }
  return taps;
}

// A display row's vertical pair applied to whole CAM rows: row(i) of the header comment.
void vertical_row(const float* cam, int64_t cam_width, const detail::CamTap& row_tap, float* vertical) {
  const float* top = cam + row_tap.first * cam_width;
  const float* bottom = cam + row_tap.second * cam_width;
  for (int64_t i = 0; i < cam_width; ++i) vertical[i] = detail::cam_lerp(top[i], bottom[i], row_tap.weight);
}

// The row's samples: detail::cam_lerp of the two cells of each run, with their difference
// computed once per run.
void sample_row(const float* vertical, const ColumnTaps& column_taps, float* samples) {
  const float* weights = column_taps.weights.data();
  for (const ColumnTaps::Run& run : column_taps.runs) {
    const float first = vertical[run.first];
    const float difference = detail::add_rn(vertical[run.second], -first);
    for (int64_t v = run.begin; v < run.end; ++v) {
      samples[v] = detail::add_rn(first, detail::mul_rn(weights[v], difference));
    }
  }
}

// Folds the row's samples into [low, high]. Along a run the weight only grows and rounding
// is monotone, so a run's samples move one way: its extremes are its end samples, which
// are the same bits sample_row computes.
void row_range(const float* vertical, const ColumnTaps& column_taps, float* low, float* high) {
  const float* weights = column_taps.weights.data();
  for (const ColumnTaps::Run& run : column_taps.runs) {
    const float first = vertical[run.first];
    const float difference = detail::add_rn(vertical[run.second], -first);
    for (const int64_t v : {run.begin, run.end - 1}) {
      const float sample = detail::add_rn(first, detail::mul_rn(weights[v], difference));
      *low = std::min(*low, sample);
      *high = std::max(*high, sample);
    }
  }
}

// What each pixel of a row shows: its colour index, or kGrey where t < floor.
constexpr int32_t kGrey = 256;

// Overwrites the samples with t.
void colour_codes(float* samples, int64_t count, float low, float high, float floor, int32_t* codes) {
  if (!(high > low)) {
    // A flat map: t = 0 everywhere (detail::cam_normalised).
    std::fill(codes, codes + count, 0.0f >= floor ? detail::cam_colour_index(0.0f) : kGrey);
    return;
  }
  // Three loops, because GCC vectorises each of them but not their fusion (a float to int
  // conversion of a selected value defeats its if-conversion).
  for (int64_t v = 0; v < count; ++v) samples[v] = detail::cam_normalised_in_range(samples[v], low, high);
  for (int64_t v = 0; v < count; ++v) codes[v] = detail::cam_colour_index(samples[v]);
  for (int64_t v = 0; v < count; ++v) codes[v] = samples[v] >= floor ? codes[v] : kGrey;
}

}  // namespace

CamRange cam_overlay_cpu(const CamView& cam, const DisplayView& display, const OverlayView& out,
                         const CamOverlayParams& params, int threads) {
  check_cam_overlay_args(cam, display, out, params);
  if (threads < 0) fail("threads must be >= 0 (0 means the default); got ", threads);
  check_cam_finite(cam, kOp);
  const detail::CamConstants k = detail::make_cam_constants(cam, display, params);
  const std::vector<detail::CamTap> row_taps = make_row_taps(cam, display, k);
  const ColumnTaps column_taps = make_column_taps(cam, display, k);

  std::vector<float> converted;
  const float* values = static_cast<const float*>(cam.data);
  if (cam.type == MapType::kFloat16) {
    const uint16_t* halves = static_cast<const uint16_t*>(cam.data);
    converted.resize(static_cast<size_t>(cam.height * cam.width));
    for (size_t i = 0; i < converted.size(); ++i) converted[i] = half_to_float(halves[i]);
    values = converted.data();
  }

  const int64_t rows = display.rows, columns = display.columns;
  // Enough rows per thread that starting it is worth it (a thread costs ~20 us).
  const int64_t min_rows = std::max<int64_t>(1, (int64_t{1} << 15) / columns);

  CamRange range{k.low, k.high};
  if (k.min_max) {
    range = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    std::mutex merge;
    const int64_t work_per_row = cam.width + 2 * static_cast<int64_t>(column_taps.runs.size());
    parallel_for(0, rows, threads, std::max<int64_t>(1, (int64_t{1} << 15) / work_per_row),
                 [&](int64_t first_row, int64_t last_row) {
      std::vector<float> vertical(static_cast<size_t>(cam.width));
      float low = std::numeric_limits<float>::infinity(), high = -low;
      for (int64_t u = first_row; u < last_row; ++u) {
        vertical_row(values, cam.width, row_taps[static_cast<size_t>(u)], vertical.data());
        row_range(vertical.data(), column_taps, &low, &high);
      }
      const std::lock_guard<std::mutex> lock(merge);
      range.low = std::min(range.low, low);
      range.high = std::max(range.high, high);
    });
  }

  // detail::cam_blend for every colour level and grey level, [colour][grey]; in 16-bit
  // unsigned arithmetic (the numerator is at most 255 * 255 + 127), which vectorises.
  std::vector<uint8_t> blend(256 * 256);
  for (int colour = 0; colour < 256; ++colour) {
    const uint16_t colour_term = static_cast<uint16_t>(colour * k.alpha255 + 127);
    const uint16_t grey_weight = static_cast<uint16_t>(255 - k.alpha255);
    uint8_t* row = blend.data() + colour * 256;
    for (int grey = 0; grey < 256; ++grey) {
      row[grey] = static_cast<uint8_t>(static_cast<uint16_t>(grey * grey_weight + colour_term) / 255);
    }
  }
  // Every pixel that a code (colour index, or kGrey) and a grey level can produce, as
  // R, G, B and a spare byte: the pixel loop becomes one lookup and one 4-byte store.
  std::vector<std::array<uint8_t, 4>> shown(static_cast<size_t>((kGrey + 1) * 256));
  for (int32_t code = 0; code <= kGrey; ++code) {
    std::array<uint8_t, 4>* entries = shown.data() + code * 256;
    if (code == kGrey) {
      for (int grey = 0; grey < 256; ++grey) entries[grey] = {uint8_t(grey), uint8_t(grey), uint8_t(grey), 0};
      continue;
    }
    const uint8_t* red = blend.data() + k.colormap.rgb[code][0] * 256;
    const uint8_t* green = blend.data() + k.colormap.rgb[code][1] * 256;
    const uint8_t* blue = blend.data() + k.colormap.rgb[code][2] * 256;
    for (int grey = 0; grey < 256; ++grey) entries[grey] = {red[grey], green[grey], blue[grey], 0};
  }

  parallel_for(0, rows, threads, min_rows, [&](int64_t first_row, int64_t last_row) {
    std::vector<float> vertical(static_cast<size_t>(cam.width)), samples(static_cast<size_t>(columns));
    std::vector<int32_t> codes(static_cast<size_t>(columns));
    for (int64_t u = first_row; u < last_row; ++u) {
      vertical_row(values, cam.width, row_taps[static_cast<size_t>(u)], vertical.data());
      sample_row(vertical.data(), column_taps, samples.data());
      colour_codes(samples.data(), columns, range.low, range.high, k.floor, codes.data());
      const uint8_t* grey_row = display.data + u * columns;
      uint8_t* out_row = out.data + u * columns * 3;
      // Four bytes per pixel, the fourth overwritten by the next pixel; the row's last
      // pixel gets its three.
      const std::array<uint8_t, 4>* table = shown.data();
      const int32_t* row_codes = codes.data();
      const int64_t last = columns - 1;
      for (int64_t v = 0; v < last; ++v) std::memcpy(out_row + 3 * v, table[row_codes[v] * 256 + grey_row[v]].data(), 4);
      std::memcpy(out_row + 3 * last, table[row_codes[last] * 256 + grey_row[last]].data(), 3);
    }
  });
  return range;
}

}  // namespace radedge
