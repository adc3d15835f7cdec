"""What makes a benchmark's figures less than they seem, said next to them (as trtexec does):
a busy machine, noisy rounds, a tail set by one round, time spent on something other than the
models, too few samples for a percentile, a baseline that decided differently."""

from __future__ import annotations

from typing import Any

from .stats import MIN_SAMPLES

#: Coefficient of variation of the time to flag above which an input's rounds are noisy.
NOISY_CV = 0.25
#: Tail / median ratio above which one slow round (or a few) sets the tail.
TAIL_RATIO = 2.0
#: Share of the time to flag spent reading and decoding the file above which an input is decode-bound.
DECODE_BOUND = 0.8
#: Load average per usable core, and share of all cores busy before the start, above which the machine is busy.
BUSY_LOAD_PER_CORE = 0.5
BUSY_FRACTION = 0.25


def _warning(kind: str, message: str, subject: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "subject": subject, "message": message}


def warnings_for(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The warnings a benchmark document (``radedge bench``'s bench.json, before its own
    ``warnings``) deserves, each ``{kind, subject, message}``."""
    found: list[dict[str, Any]] = []
    settings = document["settings"]
    if settings.get("quick"):
        found.append(_warning("quick", "--quick: a few rounds to check that the benchmark runs; rerun without "
                                       "--quick for figures to quote"))
    found.extend(_load(document["load_at_start"]))
    for error in document.get("errors", []):
        found.append(_warning("input-error", f"left out: {error['message']}", error["input"]))
    for item in document["inputs"]:
        found.extend(_input_warnings(item))
    found.extend(_samples(document))
    cores = document["machine"]["usable_cores"]
    most = max((level["threads"] for level in document.get("concurrency", [])), default=1)
    if most > cores:
        found.append(_warning("oversubscribed", f"--concurrency {most} runs more threads than the {cores} cores this "
                                                f"process may use: each call also runs ONNX Runtime and radedge's "
                                                f"ops on several threads, so the latency at that level measures "
                                                f"queueing for cores"))
    return found


def _load(load: dict[str, Any]) -> list[dict[str, Any]]:
    cores = load.get("cores") or 1
    averages = load.get("loadavg")
    busy = load.get("busy_fraction")
    reasons = []
    if averages is not None and averages["1min"] / cores > BUSY_LOAD_PER_CORE:
        reasons.append(f"load average {averages['1min']:.2f} over the last minute on {cores} core(s)")
    if busy is not None and busy > BUSY_FRACTION:
        reasons.append(f"{busy:.0%} of all cores busy with other work in the {load['sampled_s']:g} s before the start")
    if not reasons:
        return []
    return [_warning("busy-machine", "the machine was busy when the benchmark started (" + "; ".join(reasons) +
                     "): other processes compete for the cores, so the times are longer and noisier than on an idle "
                     "console; stop them or rerun when the machine is idle")]


def _input_warnings(item: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    name = item["name"]
    stages = item["warm"]["stages"]
    total = stages["total"]["summary"]
    read = stages["read"]["summary"]
    median = _median(total)
    if total["cv"] is not None and total["cv"] > NOISY_CV:
        found.append(_warning("noisy", f"the time to flag varies by {total['cv']:.0%} of its mean over "
                                       f"{total['count']} rounds (coefficient of variation above {NOISY_CV:.0%}): "
                                       f"compare medians, and rerun on an idle machine before quoting a tail", name))
    tail_name = "p99" if total["percentiles"]["p99"]["value"] is not None else "max"
    tail = total["percentiles"]["p99"]["value"] if tail_name == "p99" else total["max"]
    if median and tail is not None and tail / median > TAIL_RATIO:
        found.append(_warning("tail", f"{tail_name} {tail:.1f} ms is {tail / median:.1f}x the median {median:.1f} ms "
                                      f"over {total['count']} rounds: a few slow rounds set the tail (background "
                                      f"load, page faults, a frequency change); more rounds tell which", name))
    if median and _median(read) is not None and _median(read) / median > DECODE_BOUND:
        syntax = item.get("transfer_syntax") or item.get("format")
        found.append(_warning("decode-bound", f"reading and decoding the file ({syntax}) takes "
                                              f"{_median(read) / median:.0%} of the time to flag; the models are not "
                                              f"what limits this input, the codec is", name))
    cold = item.get("cold_start")
    if cold is not None and "error" in cold:
        found.append(_warning("cold-start-failed", f"no cold-start figure: {cold['error']}", name))
    baseline = item.get("baseline")
    if baseline is not None:
        if "error" in baseline:
            found.append(_warning("no-baseline", f"no baseline comparison: {baseline['error']}", name))
        elif not baseline["decision"]["agree"]:
            differing = [model for model, entry in baseline["decision"]["models"].items() if not entry["agree"]]
            found.append(_warning("baseline-disagrees", f"the baseline decided differently from radedge for "
                                                        f"{', '.join(differing)} (flags or top class): its times are "
                                                        f"not those of the same work, so its ratios are not comparable",
                                  name))
    return found


def _samples(document: dict[str, Any]) -> list[dict[str, Any]]:
    counts = [item["warm"]["stages"]["total"]["summary"]["count"] for item in document["inputs"]]
    if not counts:
        return []
    fewest = min(counts)
    missing = [name for name, needed in MIN_SAMPLES.items() if fewest < needed]
    found = []
    if missing:
        needs = ", ".join(f"{name} {MIN_SAMPLES[name]}" for name in missing)
        found.append(_warning("few-samples", f"{fewest} warm rounds per input: not enough for {', '.join(missing)} "
                                             f"per input (samples needed: {needs}), which are reported as n/a; give "
                                             f"--rounds {MIN_SAMPLES[missing[0]]} or more for {missing[0]}"))
    if any(item.get("cold_start") for item in document["inputs"]):
        found.append(_warning("few-samples", "cold start is one new process per input: one sample each, and the "
                                             "first process after a reboot also pays for a cold disk cache, which "
                                             "these do not"))
    return found


def _median(summary: dict[str, Any]) -> float | None:
    value = summary["percentiles"]["p50"]["value"]
    return summary["min"] if value is None and summary["count"] == 1 else value
