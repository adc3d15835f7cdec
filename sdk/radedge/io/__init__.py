"""Image ingestion: DICOM, PNG, JPEG and TIFF in, ``Image`` (stored values + metadata) out.

``read_image`` recognises the format by content; ``read_dicom`` and ``read_raster`` read
one family. All refuse an image whose declared size exceeds ``MAX_SIDE`` per side or
``max_pixels`` (default ``MAX_PIXELS``) before decoding it, and every other size an input
declares before spending it: ``radedge.io.limits`` names each bound (file length, inflated
header, header elements, sequence depth, fragments), and compressed frame headers must
agree with the DICOM header before a decoder runs. Only regular files are opened.
``IsolatedReader`` reads in a worker process with a time budget per file and a memory cap,
for what no header bound can stop: a native decoder running away inside a codestream.
"""

from __future__ import annotations

from .dicom import check_dicom, dataset_transfer_syntax, read_dicom
from ..spec.window import Percentile, Window, check_window
from .image import Image, Intensity, LookupTable, PixelPadding, PixelSpacing, Rescale, Source
from .isolated import IsolatedReader
from .limits import MAX_PIXELS, MAX_SIDE
from .raster import read_raster
from .reader import image_files, read_image, with_transfer_syntax

__all__ = [
    "check_dicom",
    "MAX_PIXELS",
    "MAX_SIDE",
    "Image",
    "IsolatedReader",
    "Intensity",
    "LookupTable",
    "Percentile",
    "PixelPadding",
    "PixelSpacing",
    "Rescale",
    "Source",
    "Window",
    "check_window",
    "dataset_transfer_syntax",
    "image_files",
    "read_dicom",
    "read_image",
    "read_raster",
    "with_transfer_syntax",
]
