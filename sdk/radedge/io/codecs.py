"""Which transfer syntaxes this installation can decode, and which pip packages would add one.

pydicom 3 decodes compressed Pixel Data through plugins (``pydicom.pixels.get_decoder``);
each plugin declares the packages it needs, and a decoder with no usable plugin reports
them in ``missing_dependencies``. That wording names import-level requirements
(``gdcm>=3.0.10``); a user needs the *pip* name (``python-gdcm``) and one recommended
choice, so radedge keeps its own table of alternatives, the one radedge installs by
default first (pyproject.toml lists pylibjpeg, its openjpeg/libjpeg/rle plugins, pyjpegls
and imagecodecs).

radedge adds one plugin of its own, ``j2k_plugin``: JPEG 2000 and HTJ2K through imagecodecs,
on every core. It is added before radedge first asks pydicom for a decoder, and where several
plugins decode a syntax ``preferred_plugin`` names the one radedge uses.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

from pydicom import uid as dicom_uid

from ..errors import UnsupportedTransferSyntaxError
from . import j2k_plugin

# pip package -> module it installs, to tell which of an alternative's packages is absent.
_IMPORT_NAME = {
    "pylibjpeg": "pylibjpeg",
    "pylibjpeg-libjpeg": "libjpeg",
    "pylibjpeg-openjpeg": "openjpeg",
    "pylibjpeg-rle": "rle",
    "pyjpegls": "jpeg_ls",
    "python-gdcm": "gdcm",
    "pillow": "PIL",
}

_LIBJPEG = ("pylibjpeg", "pylibjpeg-libjpeg")
_OPENJPEG = ("pylibjpeg", "pylibjpeg-openjpeg")
_IMAGECODECS = ("imagecodecs",)
_GDCM = ("python-gdcm",)
_PILLOW = ("pillow",)

#: Transfer syntax UID -> sets of pip packages, each set enough to decode it; first preferred.
PIP_DECODERS: dict[str, tuple[tuple[str, ...], ...]] = {
    dicom_uid.JPEGBaseline8Bit: (_LIBJPEG, _GDCM, _PILLOW),
    dicom_uid.JPEGExtended12Bit: (_LIBJPEG, _GDCM, _PILLOW),
    dicom_uid.JPEGLossless: (_LIBJPEG, _GDCM),
    dicom_uid.JPEGLosslessSV1: (_LIBJPEG, _GDCM),
    dicom_uid.JPEGLSLossless: (("pyjpegls",), _LIBJPEG, _GDCM),
    dicom_uid.JPEGLSNearLossless: (("pyjpegls",), _LIBJPEG, _GDCM),
    dicom_uid.JPEG2000Lossless: (_IMAGECODECS, _OPENJPEG, _GDCM, _PILLOW),
    dicom_uid.JPEG2000: (_IMAGECODECS, _OPENJPEG, _GDCM, _PILLOW),
    dicom_uid.HTJ2KLossless: (_IMAGECODECS, _OPENJPEG),
    dicom_uid.HTJ2KLosslessRPCL: (_IMAGECODECS, _OPENJPEG),
    dicom_uid.HTJ2K: (_IMAGECODECS, _OPENJPEG),
    # pydicom's own numpy RLE decoder always works; pylibjpeg-rle is only faster.
    dicom_uid.RLELossless: (("pylibjpeg", "pylibjpeg-rle"),),
}


# Where several installed plugins decode a syntax, the fastest first: CharLS (pyjpegls)
# decodes a 5-Mpixel JPEG-LS radiograph about 3x faster than libjpeg (pylibjpeg); radedge's
# plugin runs OpenJPEG on every core where pylibjpeg-openjpeg runs it on one
# (examples/bench_j2k_decode.py). Without a preference, or without the preferred plugin,
# pydicom tries its available plugins in its own order (gdcm, pylibjpeg, pillow).
_PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    dicom_uid.JPEGLSLossless: ("pyjpegls",),
    dicom_uid.JPEGLSNearLossless: ("pyjpegls",),
    **{uid: (j2k_plugin.PLUGIN_LABEL,) for uid in j2k_plugin.SYNTAXES},
}


@functools.cache
def _register_plugins() -> None:
    j2k_plugin.register()


def get_decoder(transfer_syntax_uid: str):
    """pydicom's decoder for the syntax, radedge's plugins added: ``pydicom.pixels.get_decoder``
    as radedge uses it. Raises ``NotImplementedError`` where pydicom has none."""
    from pydicom.pixels import get_decoder as pydicom_decoder

    _register_plugins()
    return pydicom_decoder(dicom_uid.UID(transfer_syntax_uid))


def preferred_plugin(transfer_syntax_uid: str) -> str:
    """The plugin radedge decodes the syntax with: the first of its preferences that is
    available here, or ``""`` for pydicom's choice (each available plugin in turn until one
    decodes the frame; a native syntax has no plugins)."""
    try:
        available = get_decoder(transfer_syntax_uid).available_plugins
    except NotImplementedError:
        return ""
    preferences = _PREFERRED_PLUGINS.get(str(transfer_syntax_uid), ())
    return next((name for name in preferences if name in available), "")


@dataclass(frozen=True)
class SyntaxInfo:
    """A transfer syntax as radedge reports it: UID, name and whether it is compressed."""

    uid: str
    name: str
    encapsulated: bool


def describe_syntax(transfer_syntax_uid: str) -> SyntaxInfo:
    """Name a transfer syntax UID (PS3.6 Annex A); unknown UIDs are named as such."""
    uid = dicom_uid.UID(transfer_syntax_uid)
    name = uid.name if uid.name != str(uid) else "an unknown transfer syntax"
    return SyntaxInfo(str(uid), name, bool(uid.is_encapsulated) if uid.is_transfer_syntax else True)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(_IMPORT_NAME.get(package, package)) is not None
    except (ImportError, ValueError):
        return False


def decodable_syntax_uids() -> list[str]:
    """UIDs of the transfer syntaxes whose pixel data this installation decodes."""
    uids = []
    for uid in dicom_uid.AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                uids.append(str(uid))
        except NotImplementedError:
            continue
    return uids


def decodable_syntaxes() -> list[str]:
    """Names of the transfer syntaxes this installation decodes, for error messages."""
    return [dicom_uid.UID(uid).name for uid in decodable_syntax_uids()]


def require_decoder(transfer_syntax_uid: str):
    """Return pydicom's decoder for the syntax, or raise ``UnsupportedTransferSyntaxError``.

    The error's ``missing_packages`` is the preferred pip alternative's absent packages
    (empty when nothing known decodes the syntax: MPEG-2/4 and HEVC video, JPEG 2000
    Part 2 multi-component, SMPTE ST 2110, unknown UIDs).
    """
    info = describe_syntax(transfer_syntax_uid)
    try:
        decoder = get_decoder(info.uid)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            f"Pixel Data is encoded as {info.name} ({info.uid}), which radedge cannot decode: "
            "pydicom has no decoder for it and radedge knows of no package that adds one "
            "(video and multi-component syntaxes are not used for radiographs). Ask the "
            "sender to transmit the image in one of: "
            f"{', '.join(decodable_syntaxes())}.",
            transfer_syntax_uid=info.uid,
        ) from None
    if decoder.is_available:
        return decoder

    alternatives = PIP_DECODERS.get(info.uid, ())
    missing: tuple[str, ...] = ()
    advice = "No pip package known to radedge decodes it."
    if alternatives:
        # The alternative closest to complete; a tie goes to the earlier (preferred) one.
        absent = [tuple(p for p in alt if not _installed(p)) for alt in alternatives]
        best = min(range(len(alternatives)), key=lambda i: len(absent[i]))
        if absent[best]:
            missing = absent[best]
            advice = f"Install a decoder with: pip install {' '.join(missing)}"
        else:
            # Everything importable yet unusable: a version older than pydicom accepts.
            missing = alternatives[best]
            advice = f"Upgrade the decoder with: pip install --upgrade {' '.join(missing)}"
    reported = "; ".join(decoder.missing_dependencies) or "no plugin registered"
    raise UnsupportedTransferSyntaxError(
        f"Pixel Data is encoded as {info.name} ({info.uid}) and no installed pydicom plugin "
        f"can decode it (pydicom reports: {reported}). {advice}. Alternatively ask the "
        "sender to transmit the image uncompressed (Explicit VR Little Endian).",
        transfer_syntax_uid=info.uid,
        missing_packages=missing,
    )
