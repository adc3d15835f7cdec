"""A pydicom decoder plugin: JPEG 2000 and HTJ2K Pixel Data decoded by imagecodecs, on every core.

pydicom's JPEG 2000 plugin (pylibjpeg-openjpeg) runs OpenJPEG on one thread. imagecodecs
wraps OpenJPEG with its thread pool: the same library, decoding the code-blocks and the
inverse wavelet of one frame on ``decode_threads()`` threads. It decodes JPEG 2000
(1.2.840.10008.1.2.4.90, .91) and, since OpenJPEG 2.5, HTJ2K (ITU-T T.814; .201, .202, .203).

imagecodecs also wraps OpenJPH, which decodes lossless HTJ2K on one core about 3x faster than
OpenJPEG (examples/bench_j2k_decode.py), but it is not used: given a codestream whose tile
data is cut short or overwritten, OpenJPH through imagecodecs returns an image (zeros, or the
part it read) where OpenJPEG raises, so a damaged file would be analysed instead of refused.

The frame comes back exactly as pylibjpeg-openjpeg returns it, because pydicom's processing
after the plugin (the J2K sign correction, the photometric interpretation) assumes that
layout: samples little endian, 1, 2 or 4 bytes each as the codestream's precision needs
(1-8, 9-16, 17-32 bits), signed where the codestream is signed, components interleaved per
pixel, YBR_ICT and YBR_RCT reported as RGB (OpenJPEG applies the inverse component
transform).

pydicom's plugin protocol (``pydicom.pixels.decoders``, "Decoder plugins"): ``is_available``,
``DECODER_DEPENDENCIES`` and the decode function ``decode_frame(src, runner)``. ``register``
adds it to the five decoders as ``PLUGIN_LABEL``; ``radedge.io.codecs`` does so before radedge
first asks pydicom for a decoder, and makes it the preferred plugin where it is available.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import PackageNotFoundError, version

from pydicom import uid as dicom_uid

log = logging.getLogger(__name__)

#: The label pydicom knows this plugin by; radedge's own, so it cannot clash with a plugin
#: pydicom may ship for imagecodecs one day.
PLUGIN_LABEL = "radedge-imagecodecs"

SYNTAXES = (
    dicom_uid.JPEG2000Lossless,
    dicom_uid.JPEG2000,
    dicom_uid.HTJ2KLossless,
    dicom_uid.HTJ2KLosslessRPCL,
    dicom_uid.HTJ2K,
)

#: The oldest imagecodecs known to decode every syntax here: OpenJPEG 2.5.2, with its thread
#: pool and HT decoding.
MINIMUM_IMAGECODECS = "2024.9.22"

DECODER_DEPENDENCIES = {uid: (f"imagecodecs>={MINIMUM_IMAGECODECS}",) for uid in SYNTAXES}

#: Threads OpenJPEG decodes on when neither environment variable sets a count, however many
#: CPUs there are. Each decoding thread adds about 64 MiB of address space (measured: the
#: process's peak grows by 1.1 GiB decoding on 16 threads), mostly the glibc malloc arena it
#: gets, reserved rather than used. ``radedge run`` decodes in a worker whose address space is
#: capped (``radedge.io.limits.DECODE_MEMORY_BYTES``, 4 GiB), which the threads of a 64-core
#: machine alone would exhaust; the worker's ``warm_up`` counts the arenas as held at rest, but
#: a process holding 4 GiB of them is no better. OpenJPEG itself starts at most 32.
DEFAULT_MAX_THREADS = 8

_ENVIRONMENT = ("RADEDGE_DECODE_THREADS", "RADEDGE_NUM_THREADS")
_warned: set = set()  # what has been logged once: (variable, value) or "threads"


def decode_threads() -> int:
    """Threads OpenJPEG decodes one frame on: ``RADEDGE_DECODE_THREADS`` if set to a positive
    integer, else ``RADEDGE_NUM_THREADS`` (radedge's thread count for everything), else the
    CPUs this process may run on (``os.sched_getaffinity``: a container's or ``taskset``'s CPU
    set, not the machine's) up to ``DEFAULT_MAX_THREADS``. A value that is not a positive
    integer is ignored, with a warning logged once. Read at every decode."""
    for name in _ENVIRONMENT:
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        if text.isdigit() and int(text) > 0:
            return int(text)
        if (name, text) not in _warned:
            _warned.add((name, text))
            log.warning("%s=%r is not a positive number of threads; ignored. Set it to, e.g., 1 to "
                        "decode JPEG 2000 on one thread, or unset it to use every CPU.", name, text)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    return max(1, min(usable, DEFAULT_MAX_THREADS))


def is_available(uid: str) -> bool:
    """Whether imagecodecs is importable here with an OpenJPEG that decodes ``uid``: pydicom
    asks once per decoder, when the plugin is added."""
    if uid not in SYNTAXES:
        return False
    try:
        import imagecodecs
    except ImportError:
        return False
    if not _at_least(_installed_version(), MINIMUM_IMAGECODECS):
        return False
    try:
        return bool(imagecodecs.JPEG2K.available)
    except ImportError:  # a build without the codec: imagecodecs' DelayedImportError
        return False


def _installed_version() -> str:
    try:
        return version("imagecodecs")
    except PackageNotFoundError:
        return "0"


def _at_least(found: str, minimum: str) -> bool:
    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())

    return numbers(found) >= numbers(minimum)


def decode_frame(src: bytes, runner) -> bytearray:
    """Decode one JPEG 2000 / HTJ2K frame (``src``, the codestream) for pydicom's ``runner``:
    ``bytearray`` of rows x columns x components samples, laid out as pylibjpeg-openjpeg lays
    them out (module docstring). Raises imagecodecs' ``Jpeg2kError`` for a codestream OpenJPEG
    cannot decode, ``ValueError`` for one whose components differ in precision from the first
    (the one pydicom read in SIZ)."""
    import imagecodecs
    import numpy as np
    from pydicom.pixels.common import PhotometricInterpretation

    threads = decode_threads()
    try:
        pixels = imagecodecs.jpeg2k_decode(src, numthreads=threads)
    except imagecodecs.Jpeg2kError as exc:
        # OpenJPEG could not start its threads (an address-space cap, a limit on threads): not
        # the codestream's fault, and one thread needs none started.
        if threads == 1 or "set_threads" not in str(exc):
            raise
        if "threads" not in _warned:
            _warned.add("threads")
            log.warning("OpenJPEG could not start %d decoding threads (%s); decoding on one. Set "
                        "RADEDGE_DECODE_THREADS to fewer threads.", threads, exc)
        pixels = imagecodecs.jpeg2k_decode(src, numthreads=1)
    if runner.photometric_interpretation in (PhotometricInterpretation.YBR_ICT, PhotometricInterpretation.YBR_RCT):
        runner.set_option("photometric_interpretation", PhotometricInterpretation.RGB)
    # As pydicom's pylibjpeg plugin: the container follows the codestream's precision, not
    # Bits Allocated (a 12-bit codestream in 16 bits allocated gives 2-byte samples either way;
    # an 8-bit one gives 1-byte samples).
    precision = runner.get_option("j2k_precision", runner.bits_stored)
    bits_allocated = 8 if precision <= 8 else 16 if precision <= 16 else 32
    if pixels.dtype.itemsize * 8 != bits_allocated:
        raise ValueError(
            f"the codestream decoded to {pixels.dtype.itemsize * 8}-bit samples where its first "
            f"component's precision ({precision} bits) needs {bits_allocated}: its components "
            "differ in precision, which radiographs never do"
        )
    runner.set_option("bits_allocated", bits_allocated)
    return bytearray(np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")))


def warm_up() -> None:
    """Decode a 64 x 64 codestream on ``decode_threads()`` threads, where imagecodecs is
    installed. Each thread's first allocation gives it a glibc malloc arena, whose address
    space stays reserved in the process; a worker that caps its address space after warming up
    (``radedge.io.IsolatedReader``) then counts the arenas as held at rest, not against the
    first file it decodes. Measured: the first 2400 x 2000 JPEG 2000 decode on 8 threads adds
    160 MiB of address space after a warm-up, 620 MiB without."""
    if not is_available(dicom_uid.JPEG2000Lossless):
        return
    import imagecodecs
    import numpy as np

    blank = imagecodecs.jpeg2k_encode(np.zeros((64, 64), np.uint8), level=0, codecformat="J2K", reversible=True)
    imagecodecs.jpeg2k_decode(blank, numthreads=decode_threads())


def register() -> None:
    """Add the plugin to pydicom's JPEG 2000 and HTJ2K decoders (as unavailable, with its
    dependency, where imagecodecs is not installed). Adding it again does nothing."""
    from pydicom.pixels import get_decoder

    for uid in SYNTAXES:
        decoder = get_decoder(uid)
        try:
            decoder.add_plugin(PLUGIN_LABEL, (__name__, "decode_frame"))
        except ValueError:
            # pydicom refuses a label it already holds: registered before.
            continue
