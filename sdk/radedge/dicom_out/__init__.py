"""DICOM-native results: what a PACS and a radiologist's viewer understand (the IHE AI Results
profile's set), made through highdicom from a result on a DICOM image.

- ``seg``: a Segmentation per segmentation head, at the source image's geometry;
- ``sr``: a Structured Report, TID 1500 Measurement Report, of every model's findings, and of
  an image no model analysed, with the reason;
- ``gsps``: a Grayscale Softcopy Presentation State drawing them over the original image;
- ``kos``: a Key Object Selection referencing a flagged image and the objects made for it;
- ``common``: the source, the algorithm identification, equipment, codes and UIDs they share.

``to_dicom(result)`` makes the whole set for one ``Prediction`` or ``ImageAnalysis``
(``result.to_dicom()`` calls it); ``DicomResults.save`` writes it, each file whole or not at all.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from .._files import write_atomically
from ..errors import DicomOutputError
from ..io.dicom import PARSE_ERRORS
from .common import model_outputs, source_header


@dataclass(frozen=True)
class DicomResults:
    """The DICOM objects made for one image: ``segmentations`` (one per segmentation head of
    each model), the measurement ``report`` (SR), the ``presentation_state`` (GSPS; None when
    no model analysed the image) and the ``key_objects`` (KOS; None unless flagged).
    Iterating gives every object, in that order."""

    segmentations: tuple[Dataset, ...]
    report: Dataset
    presentation_state: Dataset | None
    key_objects: Dataset | None

    def __iter__(self) -> Iterator[Dataset]:
        yield from self.segmentations
        yield self.report
        if self.presentation_state is not None:
            yield self.presentation_state
        if self.key_objects is not None:
            yield self.key_objects

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def named(self, stem: str) -> dict[str, Dataset]:
        """File name -> object: ``<stem>.sr.dcm``, ``<stem>.gsps.dcm``, ``<stem>.kos.dcm`` and
        ``<stem>.seg.dcm`` (``<stem>.seg-2.dcm``... when there are several)."""
        names = {}
        for number, segmentation in enumerate(self.segmentations, start=1):
            names[f"{stem}.seg{'' if number == 1 else f'-{number}'}.dcm"] = segmentation
        names[f"{stem}.sr.dcm"] = self.report
        if self.presentation_state is not None:
            names[f"{stem}.gsps.dcm"] = self.presentation_state
        if self.key_objects is not None:
            names[f"{stem}.kos.dcm"] = self.key_objects
        return names

    def save(self, folder: str | os.PathLike, stem: str) -> list[Path]:
        """Write every object into ``folder`` as a DICOM file (PS3.10, Explicit VR Little
        Endian unless the object says otherwise), each whole or not at all."""
        return [write_atomically(Path(folder) / name, encode(dataset)) for name, dataset in self.named(stem).items()]


def encode(dataset: Dataset) -> bytes:
    """``dataset`` as the bytes of a DICOM file: preamble, file meta, data set."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def to_dicom(result: Any) -> DicomResults:
    """The DICOM objects for ``result`` (a ``Prediction`` or an ``ImageAnalysis`` on a DICOM
    image). Raises ``NotDicomSourceError`` when the input was not DICOM."""
    from .gsps import presentation_state
    from .kos import key_objects
    from .seg import segmentations
    from .sr import measurement_report

    source_header(result)
    analysed = bool(getattr(result, "predictions", True))
    try:
        segmentation_objects = tuple(
            segmentation for output in (model_outputs(result) if analysed else [])
            for segmentation in segmentations(output)
        )
        report = measurement_report(result)
        state = presentation_state(result) if analysed else None
        made = [*segmentation_objects, report, *([state] if state is not None else [])]
        selection = key_objects(result, references=made) if analysed else None
    except PARSE_ERRORS as exc:
        # highdicom checks the source attributes it copies, and pydicom converts each on first
        # access: a header from an arbitrary sender may lack or garble them.
        # Its text is not repeated: highdicom may quote the header values it refused.
        raise DicomOutputError(
            f"no DICOM objects for {result.source}: the source's header does not hold what they must copy or "
            f"reference (highdicom raised {type(exc).__name__}; the exception is chained as __cause__)"
        ) from exc
    return DicomResults(segmentation_objects, report, state, selection)
