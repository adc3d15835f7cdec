"""Charts as inline SVG text, drawn from the figures alone: no plotting library, no script, no
external resource. Each function returns one ``<svg>`` element, well-formed XML."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .stats import PERCENTILES, percentile

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
FONT = 'font-family="sans-serif" font-size="11"'
#: The smallest time a log axis shows; a stage that took less is drawn at it.
FLOOR_MS = 0.001


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT}{extra}>{escape(text)}</text>'


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks from ``low`` to ``high`` (both > 0)."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks


def _tick_label(value: float) -> str:
    return f"{value:g}"


class _LogAxis:
    """Milliseconds onto pixels, logarithmically, over whole decades around the data."""

    def __init__(self, values: Sequence[float], start: float, end: float):
        positive = [v for v in values if v > 0] or [1.0]
        self.low = 10.0 ** math.floor(math.log10(max(FLOOR_MS, min(positive))))
        self.high = 10.0 ** math.ceil(math.log10(max(positive) * 1.0001))
        if self.high <= self.low:
            self.high = self.low * 10
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        value = min(max(value, self.low), self.high)
        share = (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        return self.start + share * (self.end - self.start)

    def ticks(self) -> list[float]:
        return _log_ticks(self.low, self.high)


def stage_distribution(rows: Sequence[tuple[str, Sequence[float]]], *, title: str, width: int = 760) -> str:
    """One row per stage: every sample as a dot, the box from the 25th to the 75th percentile,
    the median as a bar, whiskers to the minimum and maximum; milliseconds on a log axis."""
    rows = [(label, list(samples)) for label, samples in rows if samples]
    left, right, top, row_height = 150, width - 20, 30, 26
    height = top + row_height * max(1, len(rows)) + 40
    axis = _LogAxis([v for _, samples in rows for v in samples], left, right)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">', _text(left, 16, title, extra=' font-weight="bold"')]
    bottom = top + row_height * len(rows)
    for tick in axis.ticks():
        x = axis(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        parts.append(_text(x, bottom + 14, _tick_label(tick), "middle"))
    parts.append(_text((left + right) / 2, bottom + 30, "milliseconds (log scale)", "middle"))
    for index, (label, samples) in enumerate(rows):
        ordered = sorted(samples)
        centre = top + row_height * index + row_height / 2
        colour = PALETTE[index % len(PALETTE)]
        q1, median, q3 = (percentile(ordered, q) for q in (25, 50, 75))
        parts.append(f'<g><title>{escape(label)}: median {median:.3g} ms, {len(samples)} samples</title>')
        parts.append(_text(left - 8, centre + 4, label, "end"))
        parts.append(f'<line x1="{axis(ordered[0]):.1f}" y1="{centre:.1f}" x2="{axis(ordered[-1]):.1f}" '
                     f'y2="{centre:.1f}" stroke="{colour}"/>')
        parts.append(f'<rect x="{axis(q1):.1f}" y="{centre - 7:.1f}" width="{max(1.0, axis(q3) - axis(q1)):.1f}" '
                     f'height="14" fill="{colour}" fill-opacity="0.25" stroke="{colour}"/>')
        parts.append(f'<line x1="{axis(median):.1f}" y1="{centre - 9:.1f}" x2="{axis(median):.1f}" '
                     f'y2="{centre + 9:.1f}" stroke="{colour}" stroke-width="2"/>')
        for number, value in enumerate(samples):
            # A fixed spread instead of random jitter: the same figures draw the same chart.
            offset = ((number * 7) % 11 - 5) * 1.0
            parts.append(f'<circle cx="{axis(value):.1f}" cy="{centre + offset:.1f}" r="1.6" fill="{colour}" '
                         f'fill-opacity="0.6"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def tail_curves(series: Sequence[tuple[str, dict]], *, title: str, width: int = 760) -> str:
    """Per series (a ``Summary.to_dict()``), its p50, p90, p99, p99.9 and maximum joined by a
    line on a log axis of milliseconds; a percentile its samples do not support is left out,
    not drawn."""
    names = list(PERCENTILES) + ["max"]
    # The legend takes what its longest label needs (about 6.5 px a character at 11 px).
    legend = 50 + int(6.5 * max((len(label) for label, _ in series), default=0))
    width = max(width, 560 + legend)
    left, right, top = 60, width - legend, 30
    plot_height = 220
    bottom = top + plot_height
    values = [s["max"] for _, s in series if s["max"] is not None] + \
             [e["value"] for _, s in series for e in s["percentiles"].values() if e["value"] is not None]
    height = max(bottom + 40, top + 16 * len(series) + 20)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">', _text(left, 16, title, extra=' font-weight="bold"')]
    # The y axis: milliseconds, log scale, growing upwards.
    axis = _LogAxis(values or [1.0], bottom, top)
    for tick in axis.ticks():
        y = axis(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 6, y + 4, _tick_label(tick), "end"))
    parts.append(_text(14, top + plot_height / 2, "ms (log)", "middle",
                       extra=f' transform="rotate(-90 14 {top + plot_height / 2:.1f})"'))
    step = (right - left) / (len(names) - 1)
    for index, name in enumerate(names):
        parts.append(_text(left + index * step, bottom + 16, name, "middle"))
    for number, (label, summary) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        # Past the palette, a colour comes back dashed, so two series never look alike.
        dash = ' stroke-dasharray="5,3"' if number // len(PALETTE) % 2 else ""
        points = []
        for index, name in enumerate(names):
            value = summary["max"] if name == "max" else summary["percentiles"][name]["value"]
            if value is not None:
                points.append((left + index * step, axis(value), name, value))
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
        for x, y, name, value in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(label)} {name}: {value:.3g} ms ({summary["count"]} samples)</title></circle>')
        legend_y = top + 16 * number
        parts.append(f'<line x1="{right + 15}" y1="{legend_y:.1f}" x2="{right + 35}" y2="{legend_y:.1f}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(_text(right + 40, legend_y + 4, label))
    parts.append("</svg>")
    return "".join(parts)


def throughput(levels: Sequence[dict], *, title: str, width: int = 560) -> str:
    """Images per second (bars) and the median latency per call (labels) at each thread count."""
    left, right, top, bottom = 60, width - 20, 30, 230
    height = bottom + 44
    peak = max((level["images_per_s"] or 0.0 for level in levels), default=0.0) or 1.0
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">', _text(left, 16, title, extra=' font-weight="bold"')]
    for tick in range(5):
        value = peak * 1.1 * tick / 4
        y = bottom - (bottom - top) * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 6, y + 4, f"{value:.3g}", "end"))
    parts.append(_text(14, (top + bottom) / 2, "images/s", "middle",
                       extra=f' transform="rotate(-90 14 {(top + bottom) / 2:.1f})"'))
    slot = (right - left) / max(1, len(levels))
    for index, level in enumerate(levels):
        rate = level["images_per_s"] or 0.0
        bar = (bottom - top) * rate / (peak * 1.1)
        x = left + slot * index + slot * 0.2
        parts.append(f'<rect x="{x:.1f}" y="{bottom - bar:.1f}" width="{slot * 0.6:.1f}" height="{bar:.1f}" '
                     f'fill="{PALETTE[0]}" fill-opacity="0.7"><title>{level["threads"]} thread(s): {rate:.3g} '
                     f'images/s</title></rect>')
        median = level["latency_ms"]["summary"]["percentiles"]["p50"]["value"]
        parts.append(_text(x + slot * 0.3, bottom - bar - 4, f"{rate:.3g}/s", "middle"))
        parts.append(_text(x + slot * 0.3, bottom + 16, f"{level['threads']} thread{'s' if level['threads'] > 1 else ''}",
                           "middle"))
        if median is not None:
            parts.append(_text(x + slot * 0.3, bottom + 30, f"p50 {median:.3g} ms", "middle"))
    parts.append("</svg>")
    return "".join(parts)
