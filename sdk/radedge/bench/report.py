"""A benchmark's figures written out: ``bench.json`` (everything, raw samples included),
``bench.html`` (one self-contained page: tables and inline SVG charts, no script, nothing
fetched) and the concise table printed to the terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from .._files import write_atomically
from . import svg
from .runner import MODEL_STAGES, STAGES
from .stats import MIN_SAMPLES

#: The baseline's stages as the comparison names them.
COMPARED = {"read": "read + decode", "preprocess": "preprocess", "inference": "inference",
            "postprocess": "post-process", "total": "end to end"}
#: The warm stages as the report names them.
STAGE_NAMES = {"read": "read", "lut": "lut", "preprocess": "preprocess", "inference": "inference",
               "decode": "decode", "flags": "flags", "total": "to flag", "json": "JSON", "overlay": "overlay PNG",
               "dicom": "DICOM objects", "outputs": "outputs", "to_outputs": "to outputs"}


def write_json(document: dict[str, Any], folder: Path) -> Path:
    return write_atomically(folder / "bench.json", json.dumps(document, indent=1, allow_nan=False).encode())


def write_html(document: dict[str, Any], folder: Path) -> Path:
    return write_atomically(folder / "bench.html", html_report(document).encode())


def _ms(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _figure(summary: dict[str, Any], name: str, digits: int = 1) -> str:
    """A summary's figure as printed: ``12.3``, or ``n/a (30 samples)`` when unsupported."""
    if name in ("max", "min", "mean"):
        return _ms(summary[name], digits)
    value = summary["percentiles"][name]["value"]
    if value is None:
        if name == "p50" and summary["count"] == 1:
            return _ms(summary["min"], digits)
        return f"n/a ({summary['count']})"
    return f"{value:.{digits}f}"


def _median(summary: dict[str, Any]) -> float | None:
    value = summary["percentiles"]["p50"]["value"]
    return summary["min"] if value is None and summary["count"] == 1 else value


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


# ---------------------------------------------------------------- terminal


def _columns(rows: Sequence[Sequence[str]], text: Sequence[int] = (0,)) -> list[str]:
    """Rows of cells as aligned text: the columns ``text`` left-aligned, figures right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) if i in text else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows]


def text_report(document: dict[str, Any]) -> list[str]:
    """The concise table ``radedge bench`` prints: the machine, the time to flag and to outputs
    per input, the stages, per transfer syntax, cold start, concurrency, the baseline, warnings."""
    machine, settings = document["machine"], document["settings"]
    versions = machine["versions"]
    lines = [
        f"radedge bench {settings['radedge_version']}  {document['date']}",
        f"command  {document['command']}",
        f"machine  {machine['cpu']}, {machine['usable_cores']} usable of {machine['logical_cores']} logical cores, "
        f"{_ms(machine['memory_gib'])} GiB; {machine['os']}; {machine['python']}",
        f"         onnxruntime {versions.get('onnxruntime')}, numpy {versions.get('numpy')}, pydicom "
        f"{versions.get('pydicom')}, opencv {versions.get('opencv (cv2)')}; GPU: {_gpu_line(machine['gpu'])}",
        f"run      {settings['device']}, precision {settings['precision']}, {settings['rounds']} warm rounds per input "
        f"after {settings['warm_up_rounds']} warm-up, threads {settings['threads'] or 'all cores'}",
        "models   " + ", ".join(f"{m['id']} {m['version']} ({m['precision']})" for m in document["models"]),
        "",
        "warm: DICOM bytes in memory -> flags of every model that applies (ms); outputs: JSON + overlay PNG + "
        "DICOM SEG/SR/GSPS/KOS",
    ]
    rows = [["input", "n", "p50", "p90", "p99", "max", "outputs p50", "to outputs p50", "cold start"]]
    for item in document["inputs"]:
        total = item["warm"]["stages"]["total"]["summary"]
        cold = item.get("cold_start")
        rows.append([
            item["name"], str(total["count"]), _figure(total, "p50"), _figure(total, "p90"), _figure(total, "p99"),
            _figure(total, "max"), _figure(item["warm"]["stages"]["outputs"]["summary"], "p50"),
            _figure(item["warm"]["stages"]["to_outputs"]["summary"], "p50"),
            "-" if cold is None else ("failed" if "error" in cold else f"{cold['to_first_flag_ms']:.0f}"),
        ])
    lines += _columns(rows)
    lines.append("n/a (N): N samples are too few for that percentile (" +
                 ", ".join(f"{name} needs {needed}" for name, needed in MIN_SAMPLES.items()) + ")")
    lines += ["", "stages to flag, medians (ms), summed over the models that ran"]
    rows = [["input", *(STAGE_NAMES[stage] for stage in STAGES), "models"]]
    for item in document["inputs"]:
        stages = item["warm"]["stages"]
        rows.append([item["name"], *(_ms(_median(stages[stage]["summary"])) for stage in STAGES),
                     ", ".join(item["models_applied"]) or "none applies"])
    lines += _columns(rows, text=(0, len(STAGES) + 1))
    lines += ["", "per transfer syntax, rounds pooled (ms)"]
    rows = [["transfer syntax", "inputs", "n", "read p50", "to flag p50", "p90", "p99", "max", "to outputs p50"]]
    for group in document["transfer_syntaxes"]:
        flag = group["to_flag"]
        rows.append([group["name"], str(len(group["inputs"])), str(flag["count"]), _figure(group["read"], "p50"),
                     _figure(flag, "p50"), _figure(flag, "p90"), _figure(flag, "p99"), _figure(flag, "max"),
                     _figure(group["to_outputs"], "p50")])
    lines += _columns(rows)
    if any(item.get("cold_start") for item in document["inputs"]):
        lines += ["", "cold start: a new process, started -> models loaded -> first flag (ms, one sample per input)"]
        rows = [["input", "process start", "import", "load models", "to models loaded", "first flag", "to first flag"]]
        for item in document["inputs"]:
            cold = item.get("cold_start")
            if cold is None:
                continue
            if "error" in cold:
                rows.append([item["name"], "failed", "", "", "", "", ""])
                continue
            rows.append([item["name"], *(f"{cold[key]:.0f}" for key in (
                "process_start_ms", "import_ms", "load_ms", "to_models_loaded_ms", "first_flag_ms", "to_first_flag_ms"))])
        lines += _columns(rows)
    if document["concurrency"]:
        lines += ["", "concurrency: threads calling predict on one ModelSet at once, inputs in turn"]
        rows = [["threads", "calls", "images/s", "p50", "p90", "p99", "max"]]
        for level in document["concurrency"]:
            latency = level["latency_ms"]["summary"]
            rate = level["images_per_s"]
            rows.append([str(level["threads"]), str(level["calls"]), "n/a" if rate is None else f"{rate:.2f}",
                         _figure(latency, "p50"), _figure(latency, "p90"), _figure(latency, "p99"),
                         _figure(latency, "max")])
        lines += _columns(rows, text=())
    if document.get("baseline_overall") is not None:
        lines += ["", "baseline: pydicom + numpy + OpenCV + ONNX Runtime (the same ONNX files), interleaved round by "
                      "round; medians, baseline / radedge"]
        rows = [["input", *COMPARED.values(), "baseline ms", "radedge ms", "decision"]]
        for item in document["inputs"]:
            baseline = item.get("baseline")
            if baseline is None:
                continue
            if "error" in baseline:
                rows.append([item["name"], *("-" for _ in COMPARED), "-", "-", "not run"])
                continue
            ratios = baseline["ratios"]
            rows.append([item["name"], *(_ratio(ratios[stage]) for stage in COMPARED),
                         _ms(_median(baseline["stages"]["total"]["summary"])),
                         _ms(_median(baseline["radedge_stages"]["total"]["summary"])),
                         "agrees" if baseline["decision"]["agree"] else "DIFFERS"])
        overall = document["baseline_overall"]
        rows.append([f"all {overall['inputs']} (sum of medians)",
                     *(_ratio(overall["stages"][stage]["ratio"]) for stage in COMPARED),
                     _ms(overall["stages"]["total"]["baseline_ms"]), _ms(overall["stages"]["total"]["radedge_ms"]),
                     f"{overall['decisions_agree']}/{overall['inputs']} agree"])
        lines += _columns(rows, text=(0, len(COMPARED) + 3))
    lines += ["", f"warnings ({len(document['warnings'])})" if document["warnings"] else "warnings: none"]
    for warning in document["warnings"]:
        subject = f"{warning['subject']}: " if warning["subject"] else ""
        lines.append(f"  - [{warning['kind']}] {subject}{warning['message']}")
    return lines


def _gpu_line(gpu: dict[str, Any]) -> str:
    if gpu.get("nvidia_smi"):
        return "; ".join(gpu["nvidia_smi"])
    if gpu["cuda_devices"]:
        return f"{gpu['cuda_devices']} CUDA device(s)"
    return f"none ({gpu['cuda_why_none']})"


# ---------------------------------------------------------------- HTML

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
.text { text-align: left; }
th { background: #f3f3f3; }
.warn { background: #fff4e5; border-left: 4px solid #e69500; padding: 4px 8px; margin: 4px 0; }
.differs { color: #b00; font-weight: bold; }
code { background: #f3f3f3; padding: 1px 4px; }
p.note { color: #555; font-size: 0.9em; }
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text: Sequence[int] = (0,)) -> str:
    """A table of ``rows`` (cells already escaped HTML); the columns ``text`` left-aligned, figures right."""
    def cell(tag: str, index: int, content: str) -> str:
        return f'<{tag} class="text">{content}</{tag}>' if index in text else f"<{tag}>{content}</{tag}>"

    head = "" if not any(headers) else \
        "<thead><tr>" + "".join(cell("th", i, escape(h)) for i, h in enumerate(headers)) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cell("td", i, content) for i, content in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _e(value: Any) -> str:
    return escape(str(value))


def html_report(document: dict[str, Any]) -> str:
    """The report as one HTML page: every figure from ``document``, charts inline as SVG."""
    settings = document["settings"]
    sections = [
        ("summary", "Time to flag and to outputs", _summary_section(document)),
        ("stages", "Latency per stage", _stages_section(document)),
        ("tail", "The tail", _tail_section(document)),
        ("transfer-syntaxes", "Per transfer syntax", _syntax_section(document)),
        ("cold-start", "Cold start", _cold_section(document)),
        ("concurrency", "Throughput and concurrency", _concurrency_section(document)),
        ("baseline", "Against the research pipeline", _baseline_section(document)),
        ("warnings", "Warnings", _warnings_section(document)),
        ("machine", "Machine", _machine_section(document)),
        ("method", "How it was measured", _method_section(document)),
    ]
    body = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>radedge bench {escape(document['date'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>radedge bench</h1><p>{_e(document['date'])} &middot; <code>{_e(document['command'])}</code></p>"
        f"<p>{_e(settings['device'])}, precision {_e(settings['precision'])}, {settings['rounds']} warm rounds per "
        f"input after {settings['warm_up_rounds']} warm-up; {len(document['warnings'])} warning(s), see "
        f"<a href=\"#warnings\">Warnings</a>.</p>{body}</body></html>\n"
    )


def _summary_section(document: dict[str, Any]) -> str:
    rows = []
    for item in document["inputs"]:
        stages = item["warm"]["stages"]
        total = stages["total"]["summary"]
        cold = item.get("cold_start")
        rows.append([
            _e(item["name"]), _e(item.get("transfer_syntax") or item.get("format")),
            f"{item['columns']} x {item['rows']}", _e(", ".join(item["models_applied"]) or "none applies"),
            str(total["count"]), *(_e(_figure(total, name)) for name in ("p50", "p90", "p99", "p99.9", "max")),
            _e(_figure(stages["outputs"]["summary"], "p50")), _e(_figure(stages["to_outputs"]["summary"], "p50")),
            "-" if not cold else ("failed" if "error" in cold else f"{cold['to_first_flag_ms']:.0f}"),
        ])
    return ("<p>Warm rounds: from the DICOM file's bytes in memory to the flags of every model that applies "
            "(milliseconds). Outputs: the JSON, the overlay PNG and, for DICOM inputs, the SEG / SR / GSPS / KOS "
            "objects, encoded in memory. A percentile the rounds do not support reads n/a (samples).</p>"
            + _table(["input", "transfer syntax", "size", "models", "n", "p50", "p90", "p99", "p99.9", "max",
                      "outputs p50", "to outputs p50", "cold start to first flag"], rows, text=(0, 1, 3)))


def _stages_section(document: dict[str, Any]) -> str:
    parts = ["<p>Every warm round's stages as radedge's own timings report them (<code>timings_ms</code>), summed "
             "over the models that ran; each dot is one round.</p>"]
    for item in document["inputs"]:
        stages = item["warm"]["stages"]
        rows = [(STAGE_NAMES[stage], stages[stage]["samples"]) for stage in stages]
        parts.append(svg.stage_distribution(rows, title=f"{item['name']}: stages (ms)"))
        model_rows = [[_e(model_id), *(_e(_ms(_median(figures[stage]["summary"]), 2)) for stage in MODEL_STAGES)]
                      for model_id, figures in item["warm"]["models"].items()]
        if model_rows:
            parts.append(_table(["model (medians, ms)", *MODEL_STAGES], model_rows))
    return "".join(parts)


def _tail_section(document: dict[str, Any]) -> str:
    series = [(item["name"], item["warm"]["stages"]["total"]["summary"]) for item in document["inputs"]]
    if not series:
        return "<p>No input was measured.</p>"
    return ("<p>Time to flag at p50, p90, p99, p99.9 and the maximum, per input, on a log scale. A percentile the "
            "rounds do not support is not drawn.</p>" + svg.tail_curves(series, title="time to flag (ms)"))


def _syntax_section(document: dict[str, Any]) -> str:
    rows = []
    for group in document["transfer_syntaxes"]:
        flag = group["to_flag"]
        rows.append([_e(group["name"]), _e(", ".join(group["inputs"])), str(flag["count"]),
                     _e(_figure(group["read"], "p50")),
                     *(_e(_figure(flag, name)) for name in ("p50", "p90", "p99", "max")),
                     _e(_figure(group["to_outputs"], "p50"))])
    return "<p>The rounds of every input in a transfer syntax, pooled (ms).</p>" + _table(
        ["transfer syntax", "inputs", "n", "read p50", "to flag p50", "p90", "p99", "max", "to outputs p50"], rows,
        text=(0, 1))


def _cold_section(document: dict[str, Any]) -> str:
    rows = []
    for item in document["inputs"]:
        cold = item.get("cold_start")
        if cold is None:
            continue
        if "error" in cold:
            rows.append([_e(item["name"]), f'<span class="differs">{_e(cold["error"])}</span>', "", "", "", "", ""])
            continue
        rows.append([_e(item["name"]), *(f"{cold[key]:.0f}" for key in (
            "process_start_ms", "import_ms", "load_ms", "to_models_loaded_ms", "first_flag_ms", "to_first_flag_ms"))])
    if not rows:
        return "<p>Not measured in this run.</p>"
    return ("<p>A new process per input: from being started to the models loaded (bundles verified, one ONNX Runtime "
            "session per model created and warmed up) to the first image's flags (ms, one sample each).</p>"
            + _table(["input", "process start", "import", "load models", "to models loaded", "first flag",
                      "to first flag"], rows))


def _concurrency_section(document: dict[str, Any]) -> str:
    levels = document["concurrency"]
    if not levels:
        return "<p>Not measured in this run.</p>"
    rows = [[str(level["threads"]), str(level["calls"]), _ms(level["images_per_s"], 2),
             *(_e(_figure(level["latency_ms"]["summary"], name)) for name in ("p50", "p90", "p99", "max"))]
            for level in levels]
    return ("<p>K threads calling <code>predict</code> on the same ModelSet at once, each taking the inputs in turn; "
            "latency per call (ms) and images per second over the whole level.</p>"
            + svg.throughput(levels, title="throughput by threads")
            + _table(["threads", "calls", "images/s", "p50", "p90", "p99", "max"], rows))


def _baseline_section(document: dict[str, Any]) -> str:
    overall = document.get("baseline_overall")
    if document["settings"]["baseline"] is False:
        return "<p>Not run: add <code>--baseline</code>.</p>"
    rows = []
    for item in document["inputs"]:
        baseline = item.get("baseline")
        if baseline is None:
            continue
        if "error" in baseline:
            rows.append([_e(item["name"]), *("-" for _ in COMPARED), f'<span class="differs">{_e(baseline["error"])}'
                                                                      "</span>"])
            continue
        cells = []
        for stage in COMPARED:
            theirs = _median(baseline["stages"][stage]["summary"])
            ours = _median(baseline["radedge_stages"][stage]["summary"])
            cells.append(f"{_ms(theirs)} / {_ms(ours)} = <b>{_ratio(baseline['ratios'][stage])}</b>")
        decision = baseline["decision"]
        verdict = "agrees" if decision["agree"] else '<span class="differs">DIFFERS</span>'
        detail = "; ".join(f"{model}: radedge {entry['radedge']['flags'] or 'no flags'} / {entry['radedge']['verdict']}"
                           f", baseline {entry['baseline']['flags'] or 'no flags'} / {entry['baseline']['verdict']}"
                           for model, entry in decision["models"].items())
        rows.append([_e(item["name"]), *cells, f"{verdict}<br><small>{_e(detail)}</small>"])
    if overall is not None:
        rows.append([f"all {overall['inputs']} inputs (sum of medians)",
                     *(f"{_ms(overall['stages'][s]['baseline_ms'])} / {_ms(overall['stages'][s]['radedge_ms'])} = "
                       f"<b>{_ratio(overall['stages'][s]['ratio'])}</b>" for s in COMPARED),
                     f"{overall['decisions_agree']}/{overall['inputs']} agree"])
    return ("<p>The research pipeline a vendor would otherwise write (pydicom <code>dcmread</code> + "
            "<code>pixel_array</code> + <code>apply_modality_lut</code> + <code>apply_voi_lut</code>, numpy "
            "normalisation, <code>cv2.resize</code>, the same ONNX file in ONNX Runtime with the same threads, "
            "OpenCV / numpy post-processing and the manifest's flag rules), run in this process and interleaved "
            "with radedge round by round. Medians in ms, baseline / radedge = ratio. radedge's preprocess is its "
            "lut + preprocess stages, its post-process decode + flags. The decision is each model's flags and top "
            "class on the warm-up round; a ratio only means something where they agree.</p>"
            + _table(["input", *COMPARED.values(), "decision"], rows, text=(0, len(COMPARED) + 1)))


def _warnings_section(document: dict[str, Any]) -> str:
    if not document["warnings"]:
        return "<p>None.</p>"
    return "".join(f'<div class="warn"><b>{_e(w["kind"])}</b> {(_e(w["subject"]) + ": ") if w["subject"] else ""}'
                   f'{_e(w["message"])}</div>' for w in document["warnings"])


def _machine_section(document: dict[str, Any]) -> str:
    machine, load = document["machine"], document["load_at_start"]
    averages = load.get("loadavg")
    rows = [
        ["CPU", _e(machine["cpu"])],
        ["cores", f"{machine['usable_cores']} usable of {machine['logical_cores']} logical"],
        ["memory", f"{_ms(machine['memory_gib'])} GiB"],
        ["GPU", _e(_gpu_line(machine["gpu"]))],
        ["native module built with CUDA", _e(machine["gpu"]["native_built_with_cuda"])],
        ["OS", _e(machine["os"])],
        ["Python", _e(machine["python"])],
        ["load average at start", "n/a" if averages is None else
         _e(f"{averages['1min']:.2f} / {averages['5min']:.2f} / {averages['15min']:.2f} (1 / 5 / 15 min)")],
        ["cores busy before start", "n/a" if load.get("busy_fraction") is None else
         _e(f"{load['busy_fraction']:.0%} over {load['sampled_s']:g} s")],
        *([[_e(name), _e(version or "not installed")] for name, version in machine["versions"].items()]),
        ["models", _e(", ".join(f"{m['id']} {m['version']} {m['precision']} on {m['backend']}/{m['device']} "
                                f"(bundle {m['sha256'][:12]})" for m in document["models"]))],
        ["command", f"<code>{_e(document['command'])}</code>"],
        ["date", _e(document["date"])],
    ]
    return _table(["", ""], rows, text=(0, 1))


def _method_section(document: dict[str, Any]) -> str:
    settings = document["settings"]
    return (f"<p>Percentiles: {_e(settings['percentile_method'])}. Samples each needs: "
            f"{_e(', '.join(f'{k} {v}' for k, v in settings['percentile_min_samples'].items()))}.</p>"
            "<p>Each input is read into memory once; one untimed round per input warms every path (and records "
            "the decisions the baseline is compared on), then the rounds go over the inputs in turn. The raw "
            "samples of every stage are in bench.json beside this page.</p>")
