"""What decoding JPEG 2000 and HTJ2K on every core gains: pylibjpeg-openjpeg (OpenJPEG on one
thread, pydicom's plugin) against imagecodecs' OpenJPEG on one thread and on all of them
(radedge's plugin, ``radedge.io.j2k_plugin``), and ``read_image`` end to end with each plugin,
taking turns.

    .venv/bin/python examples/bench_j2k_decode.py [--seconds S]

The image: a 3000 x 3000 12-bit femur phantom (``radedge.export.phantoms``), written as JPEG 2000
Lossless by pydicom's encoder (as the examples are), as HTJ2K Lossless by OpenJPH, and for
reference uncompressed and as JPEG-LS Lossless, whose ``read_image`` times are printed beside.
OpenJPH decoding the HTJ2K codestream is timed too, though radedge does not use it (it returns
an image from a codestream cut short, where OpenJPEG refuses it). Every decoder's pixels are
checked equal to the phantom's before timing.

Prints the hardware and library versions, medians and 95th percentiles, each variant's ratio
to pylibjpeg-openjpeg measured in the same run, and a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np
import openjpeg
import pydicom
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEG2000Lossless, JPEGLSLossless

from benchlib import cpu_model, measure
from radedge.export.phantoms import long_bone_radiograph, write_dicom
from radedge.io import read_image
from radedge.io.codecs import get_decoder, preferred_plugin
from radedge.io.j2k_plugin import PLUGIN_LABEL, SYNTAXES, decode_threads, register

SIDE = 3000


def _codestream(path: Path) -> bytes:
    return next(generate_frames(pydicom.dcmread(path).PixelData, number_of_frames=1))


def _with_plugin(present: bool) -> None:
    """radedge's plugin added to (or taken from) pydicom's decoders, so ``read_image`` uses it
    (or pydicom's order: pylibjpeg-openjpeg). Changes only when asked for the other state."""
    if present:
        register()
        return
    for uid in SYNTAXES:
        decoder = get_decoder(uid)
        if PLUGIN_LABEL in decoder.available_plugins:
            decoder.remove_plugin(PLUGIN_LABEL)


def _read(path: Path, plugin: bool):
    def run():
        _with_plugin(plugin)
        return read_image(path)
    return run


def _summary(times: dict, baseline: str | None) -> list[tuple[str, float, float, float | None]]:
    rows = []
    for name, values in times.items():
        median, p95 = float(np.median(values)), float(np.percentile(values, 95))
        ratio = float(np.median(times[baseline])) / median if baseline else None
        rows.append((name, median, p95, ratio))
        speed = f"   x{ratio:.2f} vs {baseline}" if ratio else ""
        print(f"  {name:<44} {median:8.1f} ms (p95 {p95:8.1f}){speed}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per variant")
    args = parser.parse_args()
    threads = decode_threads()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} hardware threads, {usable} usable by this process)")
    print(f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpeg2k_version()}, {imagecodecs.htj2k_version()}), "
          f"pylibjpeg-openjpeg {openjpeg.__version__}, pydicom {pydicom.__version__}; "
          f"radedge decodes JPEG 2000 on {threads} threads")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average before: {load:.2f} (timings on a busy machine mean little)")

    phantom = long_bone_radiograph(7, label="benign", bits_stored=12, rows=SIDE, columns=SIDE)
    tables = []
    with tempfile.TemporaryDirectory() as folder:
        files = {syntax: write_dicom(phantom, Path(folder) / f"{name}.dcm", transfer_syntax=syntax)
                 for name, syntax in (("j2k", JPEG2000Lossless), ("htj2k", HTJ2KLossless),
                                      ("native", ExplicitVRLittleEndian), ("jpeg_ls", JPEGLSLossless))}
        j2k, htj2k = _codestream(files[JPEG2000Lossless]), _codestream(files[HTJ2KLossless])
        print(f"{SIDE} x {SIDE} 12-bit phantom: JPEG 2000 {len(j2k) / 1e6:.1f} MB, HTJ2K {len(htj2k) / 1e6:.1f} MB "
              f"(uncompressed {phantom.stored.nbytes / 1e6:.1f} MB)")

        def pylibjpeg(codestream):
            return lambda: openjpeg.decode_pixel_data(codestream, version=2)

        def opj(codestream, count):
            return lambda: imagecodecs.jpeg2k_decode(codestream, numthreads=count)

        groups = {
            "JPEG 2000 Lossless, codestream": {
                "pylibjpeg-openjpeg (1 thread)": pylibjpeg(j2k),
                "imagecodecs OpenJPEG, 1 thread": opj(j2k, 1),
                f"imagecodecs OpenJPEG, {threads} threads (radedge)": opj(j2k, threads),
            },
            "HTJ2K Lossless, codestream": {
                "pylibjpeg-openjpeg (1 thread)": pylibjpeg(htj2k),
                "imagecodecs OpenJPEG, 1 thread": opj(htj2k, 1),
                f"imagecodecs OpenJPEG, {threads} threads (radedge)": opj(htj2k, threads),
                "imagecodecs OpenJPH, 1 thread (not used)": lambda: imagecodecs.htj2k_decode(htj2k),
            },
        }
        for group in groups.values():
            for name, run in group.items():
                decoded = run()
                pixels = np.frombuffer(decoded, "<u2") if not isinstance(decoded, np.ndarray) else decoded
                assert np.array_equal(pixels.reshape(SIDE, SIDE), phantom.stored), name

        reads = {
            "read_image JPEG 2000, pylibjpeg-openjpeg": _read(files[JPEG2000Lossless], False),
            "read_image JPEG 2000, radedge-imagecodecs": _read(files[JPEG2000Lossless], True),
            "read_image HTJ2K, pylibjpeg-openjpeg": _read(files[HTJ2KLossless], False),
            "read_image HTJ2K, radedge-imagecodecs": _read(files[HTJ2KLossless], True),
            "read_image uncompressed": _read(files[ExplicitVRLittleEndian], True),
            "read_image JPEG-LS Lossless (CharLS)": _read(files[JPEGLSLossless], True),
        }
        for name, run in reads.items():
            assert np.array_equal(run().pixels, phantom.stored), name
        _with_plugin(True)
        assert preferred_plugin(JPEG2000Lossless) == PLUGIN_LABEL == preferred_plugin(HTJ2KLossless)

        for title, group in groups.items():
            print(f"{title} (ratio: speed-up over pylibjpeg-openjpeg)")
            rows = _summary(measure(group, args.seconds), "pylibjpeg-openjpeg (1 thread)")
            tables.append((title, rows))
        print("read_image end to end")
        times = measure(reads, args.seconds)
        rows = []
        for name, values in times.items():
            peer = name.replace("radedge-imagecodecs", "pylibjpeg-openjpeg")
            ratio = float(np.median(times[peer])) / float(np.median(values)) if peer != name else None
            rows.append((name, float(np.median(values)), float(np.percentile(values, 95)), ratio))
            speed = f"   x{ratio:.2f} vs pylibjpeg-openjpeg" if ratio else ""
            print(f"  {name:<44} {rows[-1][1]:8.1f} ms (p95 {rows[-1][2]:8.1f}){speed}")
        tables.append(("read_image end to end", rows))
        _with_plugin(True)

    print(f"\n{cpu_model()}, {usable} usable CPUs; `python examples/bench_j2k_decode.py --seconds {args.seconds:g}`\n")
    print("| 3000 x 3000, 12-bit | median | p95 | speed-up over pylibjpeg-openjpeg |\n| --- | --- | --- | --- |")
    for title, rows in tables:
        for name, median, p95, ratio in rows:
            label = name if title.startswith("read_image") else f"{title.split(',')[0]}: {name}"
            print(f"| {label} | {median:.0f} ms | {p95:.0f} ms | {f'{ratio:.2f}x' if ratio else '-'} |")


if __name__ == "__main__":
    main()
