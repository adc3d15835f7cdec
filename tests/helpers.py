"""What the test modules share: the device parametrisation, marks for what a test needs,
geometries, and fake CUDA arrays.

Fake CUDA arrays. ``FakeCudaArray`` and ``FakeDLPack`` describe arrays whose data pointer points
at memory that does not exist (``NOWHERE``, in the first page, which Linux never maps: no host or
device memory lives there, yet the pointer is not null). That is legitimate only because radedge
decides from the metadata alone, before any CUDA call, and never dereferences a data pointer:
accepted metadata reaches the first CUDA call, which fails on a machine without a GPU, and on a
GPU only asks CUDA what kind of memory the address is, which reads nothing at that address.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import math
from fractions import Fraction
from types import SimpleNamespace

import pytest

from radedge import cuda


def cpu_and_cuda() -> list:
    """The ``device`` parametrisation of an op test: "cpu", and "cuda" marked ``needs_cuda``, which
    tests/conftest.py skips, with the reason, where no CUDA device is visible."""
    return [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.needs_cuda)]


without_gpu = pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour where no CUDA device is usable")


def _has_torch_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


needs_torch_cuda = pytest.mark.skipif(not _has_torch_cuda(), reason="needs PyTorch built with CUDA and a GPU")


# --- geometries --------------------------------------------------------------------------------


def letterbox_content(rows: int, columns: int, height: int, width: int) -> tuple[int, int]:
    """(content_height, content_width) of a rows x columns image letterboxed into height x width:
    ``s = min(height / rows, width / columns)``, ``max(1, round(n * s))`` with halves rounded up,
    evaluated exactly in rationals."""
    s = min(Fraction(height, rows), Fraction(width, columns))
    return tuple(max(1, math.floor(n * s + Fraction(1, 2))) for n in (rows, columns))


def geometry_of(rows: int, columns: int, height: int, width: int, resize: str = "stretch", crop=None) -> dict:
    """Every field of a geometry (radedge.ops.ResizeGeometry's, with the model input size) for the
    crop ``(x, y, width, height)`` (default: the whole image) of a rows x columns source placed in a
    height x width model input, restated from the preprocess op's documented rules: ``"stretch"``
    fills the input, ``"letterbox"`` keeps the aspect ratio (:func:`letterbox_content`) and centres
    the content, offsets rounded down; scales are content / crop."""
    crop_x, crop_y, crop_w, crop_h = crop if crop is not None else (0, 0, columns, rows)
    if resize == "stretch":
        content_h, content_w = height, width
    else:
        content_h, content_w = letterbox_content(crop_h, crop_w, height, width)
    return {
        "source_rows": rows,
        "source_columns": columns,
        "content_height": content_h,
        "content_width": content_w,
        "offset_y": (height - content_h) // 2,
        "offset_x": (width - content_w) // 2,
        "scale_y": content_h / crop_h,
        "scale_x": content_w / crop_w,
        "crop_x": crop_x,
        "crop_y": crop_y,
        "crop_width": crop_w,
        "crop_height": crop_h,
        "input_height": height,
        "input_width": width,
    }


# The fields a decode op cannot do without: the model input size may be passed as input_size, the
# scales are content / crop, and the crop defaults to the whole image.
_LEAST_FIELDS = ("source_rows", "source_columns", "crop_x", "crop_y", "crop_width", "crop_height", "offset_x",
                 "offset_y", "content_width", "content_height")


def least_geometry(g: dict) -> SimpleNamespace:
    """``g``'s source, crop and content fields as the attributes of a plain object, without scales
    and the model input size: the least that a decode op accepts (given ``input_size``)."""
    return SimpleNamespace(**{key: g[key] for key in _LEAST_FIELDS})


# --- fake CUDA arrays (see the module docstring) ------------------------------------------------

NOWHERE = 0x800


class FakeCudaArray:
    """Exports a __cuda_array_interface__ (version 3) dict and nothing else. ``address``, ``shape``,
    ``typestr``, ``strides`` (None: C-contiguous) and ``readonly`` make its fields; ``fields``
    (any interface key, ``data`` included) are set over them."""

    def __init__(self, address=NOWHERE, shape=(4, 5), typestr="<u2", strides=None, readonly=False, **fields):
        self.address = address
        self.fields = {"shape": tuple(shape), "typestr": typestr, "data": (address, readonly), "version": 3}
        if strides is not None:
            self.fields["strides"] = tuple(strides)
        self.fields.update(fields)

    @property
    def __cuda_array_interface__(self):
        return self.fields


# DLPack structs for ctypes, from the DLPack specification (as radedge/dlpack_abi.h).


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]


class _DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _DLManagedTensorVersioned(ctypes.Structure):
    pass


_VERSIONED_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensorVersioned))
_DLManagedTensorVersioned._fields_ = [
    ("version", _DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", _VERSIONED_DELETER),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", _DLTensor),
]

assert ctypes.sizeof(_DLManagedTensor) == 64 and ctypes.sizeof(_DLManagedTensorVersioned) == 80

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]

# A capsule keeps a pointer to its name: module constants outlive every capsule made here.
_UNVERSIONED_NAME = b"dltensor"
_VERSIONED_NAME = b"dltensor_versioned"
USED_NAME = b"used_dltensor"

# DLManagedTensorVersioned flags.
READ_ONLY, IS_COPIED = 1, 2


def capsule_name(capsule) -> bytes:
    """The name a DLPack capsule carries: b"dltensor", b"used_dltensor_versioned", ..."""
    return _capsule_name(capsule)


class FakeDLPack:
    """A DLPack capsule (``capsule``) describing a tensor on CUDA device 0 (or ``device_type``) at
    NOWHERE, whose deleter only counts its calls (``deleted``)."""

    def __init__(self, shape=(4, 5), code=1, bits=16, versioned=False, flags=0, major=1, device_type=2, name=None):
        self.deleted = 0
        self._shape = (ctypes.c_int64 * len(shape))(*shape)

        def deleter(_):
            self.deleted += 1

        if versioned:
            self._deleter = _VERSIONED_DELETER(deleter)
            self.managed = _DLManagedTensorVersioned(
                version=_DLPackVersion(major, 1), deleter=self._deleter, flags=flags
            )
        else:
            self._deleter = _DELETER(deleter)
            self.managed = _DLManagedTensor(deleter=self._deleter)
        tensor = self.managed.dl_tensor
        tensor.data = NOWHERE
        tensor.device = _DLDevice(device_type, 0)
        tensor.ndim = len(shape)
        tensor.dtype = _DLDataType(code, bits, 1)
        tensor.shape = self._shape
        if name is None:
            name = _VERSIONED_NAME if versioned else _UNVERSIONED_NAME
        self.capsule = _capsule_new(ctypes.addressof(self.managed), name, None)

    @property
    def name(self) -> str:
        return _capsule_name(self.capsule).decode()


def strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as every JSON reader but Python's does."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)
