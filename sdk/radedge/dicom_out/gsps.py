"""Grayscale Softcopy Presentation State (PS3.3 A.33.1): radedge's findings drawn over the
original image, in the window the model saw it, by any viewer that applies presentation states.

What it draws, in the source's PIXEL space (PS3.3 C.10.5.1.2: (0, 0) the top left corner of
the top left pixel, (Columns, Rows) the bottom right corner of the last; radedge's continuous
coordinates, where pixel i spans [i, i + 1], are the same numbers):

- a segmentation label: one closed POLYLINE per connected region of its mask, through the
  centres of the region's boundary pixels, simplified (``outlines``), with the label beside it;
- a detection box: a closed POLYLINE through its four corners, with "label score" above it,
  anchored at its top left corner;
- a heatmap point (a vertebral level, a fracture): a CIRCLE centred on it, with its label;
- what the console's banner says (each flag raised, then the display head's verdict), one
  line of text per entry, top left of the displayed area (DISPLAY units).

One graphic layer per model (PS3.3 C.10.7), so a viewer that lists layers shows or hides a
model's drawings together; a class activation map has no grayscale drawing and is left to the
PNG overlay. The Softcopy VOI LUT (C.11.8) is the window the model's lookup table used
(``model_voi``) and the Presentation LUT Shape (C.11.6.1.2) is INVERSE for a MONOCHROME1
source: a presentation state's pipeline ignores the referenced image's Photometric
Interpretation (PS3.4 N.2.1.4 note 1), so without it a MONOCHROME1 radiograph would show
bone black. highdicom copies patient, study and the Modality LUT (rescale) from the source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import InvalidWindowError
from ..heads.base import BoxLayer, MaskLayer, PointLayer
from ..spec.window import Window, check_window
from . import contours
from .common import SERIES_NUMBER, ModelOutput, equipment, long_string, model_outputs, new_uid, source_header

#: Most vertices of one outline: a viewer redraws every graphic on each pan and zoom.
MAX_OUTLINE_POINTS = 256

#: Most outlines of one label (its largest regions); a speckled mask is for the SEG to carry.
MAX_OUTLINES_PER_LABEL = 32

#: Presentation State Identification (C.11.10) Content Label, a Code String.
CONTENT_LABEL = "RADEDGE"

#: Graphic layer colours by model, RGB (0-255), the PNG overlay's palette.
_COLOURS = [(255, 64, 32), (32, 160, 255), (64, 255, 64), (255, 224, 32), (224, 64, 255), (32, 255, 224)]

#: Height of a banner line, as a fraction of the displayed area.
_BANNER_LINE = 0.035


def presentation_state(result: Any):
    """``highdicom.pr.GrayscaleSoftcopyPresentationState`` of ``result`` (an ``ImageAnalysis``:
    every model's findings; or a ``Prediction``), referencing its DICOM source image.

    New series and instance UIDs; patient and study are the source's. Raises
    ``NotDicomSourceError`` for a result whose input was not DICOM.
    """
    import highdicom as hd

    header = source_header(result)
    outputs = model_outputs(result)
    rows, columns = int(header.Rows), int(header.Columns)
    layers, annotations, banner_line = [], [], 0
    for order, output in enumerate(outputs, start=1):
        layer = _layer(_layer_name(output.model_id, [layer.GraphicLayer for layer in layers]), order,
                       f"{output.model_id} {output.model_version}".strip(), _COLOURS[(order - 1) % len(_COLOURS)])
        graphics, texts = _drawings(output.prediction.layers(), rows, columns)
        lines = [f"{output.model_id}: {line}" for line in output.prediction.banner()]
        texts += _banner(lines or [f"{output.model_id}: nothing flagged"], banner_line)
        banner_line += max(1, len(lines))
        layers.append(layer)
        annotations.append(hd.pr.GraphicAnnotation(
            referenced_images=[header], graphic_layer=layer, graphic_objects=graphics or None, text_objects=texts,
        ))
    if not outputs:
        layer = _layer(CONTENT_LABEL, 1, "radedge", _COLOURS[0])
        layers.append(layer)
        annotations.append(hd.pr.GraphicAnnotation(
            referenced_images=[header], graphic_layer=layer,
            text_objects=_banner([f"radedge: not analysed: {getattr(result, 'reason', None) or 'no model ran'}"], 0),
        ))
    voi = model_voi(outputs, header)
    shape = "INVERSE" if str(header.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1" else "IDENTITY"
    described = ", ".join(f"{output.model_id} {output.model_version}".strip() for output in outputs)
    state = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[header],
        series_instance_uid=new_uid(),
        series_number=SERIES_NUMBER["gsps"],
        sop_instance_uid=new_uid(),
        instance_number=1,
        **equipment(outputs),
        content_label=CONTENT_LABEL,
        content_description=long_string(f"radedge findings: {described or 'not analysed'}"),
        graphic_annotations=annotations,
        graphic_layers=layers,
        voi_lut_transformations=None if voi is None else [voi],
        presentation_lut_transformation=hd.PresentationLUTTransformation(presentation_lut_shape=shape),
        series_description="radedge findings",
    )
    # General Series (PS3.3 C.7.3.1): the body part and side of the image drawn on. Laterality
    # is Type 2C (a paired body part) and a presentation state has no Image Laterality to carry
    # the side instead, so the image's side is the series'; an image without one leaves it as
    # its own series does.
    if header.get("BodyPartExamined"):
        state.BodyPartExamined = header.BodyPartExamined
    sides = [str(header.get(keyword) or "").upper() for keyword in ("Laterality", "ImageLaterality")]
    side = next((side for side in sides if side in ("R", "L")), None)
    if side is not None or "Laterality" in header:
        state.Laterality = side
    return state


def model_voi(outputs: Sequence[ModelOutput], header: Dataset):
    """The Softcopy VOI LUT (``highdicom.pr.SoftcopyVOILUTTransformation``) showing the image as
    the first model saw it: its manifest's window; else the source's VOI LUT Sequence item or
    window the manifest's ``voi_index`` chose; else the window its table read off the image (a
    percentile or min-max window, from the table's description); else the source's first
    window; None (the source's own VOI, copied by highdicom) when there is none of these."""
    import highdicom as hd

    windows = file_windows(header)
    window, explanation = None, None
    if outputs:
        output = outputs[0]
        spec = output.manifest.intensity
        explanation = f"radedge: as {output.model_id} saw it"
        if spec.window is None and spec.voi == "file" and spec.voi_index < len(header.get("VOILUTSequence") or ()):
            # highdicom builds a VOI LUT item only from decoded data; the source's item is copied
            # as it is, with its descriptor, instead.
            transformation = hd.pr.SoftcopyVOILUTTransformation(window_center=0, window_width=1)
            del transformation.WindowCenter, transformation.WindowWidth
            transformation.VOILUTSequence = [_softcopy_voi_lut(header.VOILUTSequence[spec.voi_index])]
            return transformation
        if spec.window is not None:
            window = spec.window
        elif spec.voi == "file" and spec.voi_index < len(windows):
            window = windows[spec.voi_index]
        else:
            window = window_in_description(output.prediction.image.get("intensity"))
    if window is None and windows:
        window, explanation = windows[0], "the source's first window"
    if window is None:
        return None
    # One-item lists: highdicom stores a lone explanation string character by character.
    return hd.pr.SoftcopyVOILUTTransformation(
        window_center=[float(window.center)], window_width=[float(window.width)],
        window_explanation=[long_string(explanation)], voi_lut_function=str(window.function),
    )


def _softcopy_voi_lut(item: Dataset) -> Dataset:
    """A VOI LUT Sequence item of the source as a presentation state's: there, the entries are
    8 or 16 bits (the LUT Descriptor's third value), so entries of another width (e.g. 12)
    are scaled to 16 bits, which keeps each one's fraction of the output range."""
    bits = int(item.LUTDescriptor[2])
    if bits in (8, 16):
        return deepcopy(item)
    data = item.LUTData
    values = np.frombuffer(data, dtype="<u2") if isinstance(data, bytes) else np.asarray(data, dtype=np.float64)
    scaled = np.round(values.astype(np.float64) * 65535.0 / ((1 << bits) - 1)).astype("<u2")
    copied = deepcopy(item)
    copied.LUTDescriptor = [*list(item.LUTDescriptor)[:2], 16]
    copied.LUTData = scaled.tobytes() if isinstance(data, bytes) else scaled.tolist()
    return copied


def file_windows(header: Dataset) -> tuple[Window, ...]:
    """The source's Window Center/Width pairs (PS3.3 C.11.2.1.2) with its VOI LUT Function, one
    value of either applying to every index of the other, as ``radedge.io`` reads them."""
    centers = _numbers(header.get("WindowCenter"))
    widths = _numbers(header.get("WindowWidth"))
    if not centers or not widths:
        return ()
    function = str(header.get("VOILUTFunction") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    count = max(len(centers), len(widths)) if 1 in (len(centers), len(widths)) else min(len(centers), len(widths))
    return tuple(
        Window(centers[min(index, len(centers) - 1)], widths[min(index, len(widths) - 1)], function)
        for index in range(count)
    )


def window_in_description(description: str | None) -> Window | None:
    """The window an ``IntensityLut.description`` says its table used: a VOI or percentile
    window ("C=.. W=.. FUNCTION"), or a min-max one ("[low, high]", as LINEAR_EXACT); None for
    a VOI LUT, a raster's display values or a degenerate window. The figures are printed with
    six significant digits."""
    if not description:
        return None
    found = re.search(r"C=(\S+) W=(\S+) (LINEAR_EXACT|LINEAR|SIGMOID)\b", description)
    if found:
        center, width, function = float(found[1]), float(found[2]), found[3]
    else:
        found = re.search(r"min-max of the modality output over the stored values present \[(\S+), (\S+)\]",
                          description)
        if not found:
            return None
        low, high = float(found[1]), float(found[2])
        center, width, function = (low + high) / 2, high - low, "LINEAR_EXACT"
    window = Window(center, width, function)
    try:
        check_window(window)
    except InvalidWindowError:
        return None
    return window


def outlines(region: np.ndarray, max_points: int = MAX_OUTLINE_POINTS,
             max_outlines: int = MAX_OUTLINES_PER_LABEL) -> list[np.ndarray]:
    """Closed outlines of the connected regions (8-connected) of ``region`` (bool [rows,
    columns]): the ``max_outlines`` regions of most pixels, the outline enclosing the largest
    area first; each float64 [n, 2] of (column, row) PIXEL coordinates through the centres of
    boundary pixels, its last point its first.

    Each outline is the region's outer boundary (holes are not drawn; a region inside another's
    hole has its own outline) simplified with Douglas-Peucker (``contours``): every boundary
    pixel within 1 pixel of it, the tolerance doubling until it has at most ``max_points``
    vertices. Vertices are boundary pixels, so they lie on the mask; a region of one pixel is a
    two-point line of zero length.
    """
    region = np.asarray(region, dtype=bool)
    found = sorted(contours.regions(region), key=lambda item: -item.pixel_count)[:max_outlines]
    drawn = []
    for item in found:
        boundary = contours.trace_boundary(region, item)
        tolerance = 1.0
        while True:
            simplified = contours.simplify_closed(boundary, tolerance)
            if len(simplified) + 1 <= max_points:
                break
            tolerance *= 2
        points = simplified + 0.5
        drawn.append(np.concatenate([points, points[:1]]))
    # Stable: regions of equal area keep the order of their pixel counts.
    return sorted(drawn, key=lambda outline: -contours.polygon_area(outline[:-1]))


def _drawings(layers: Sequence[Any], rows: int, columns: int) -> tuple[list, list]:
    """Graphic and text objects of a prediction's overlay layers (``Prediction.layers()``)."""
    import highdicom as hd

    text_size = float(min(64, max(12, round(max(rows, columns) / 80))))
    radius = float(max(3, round(max(rows, columns) / 200)))
    graphics, texts = [], []
    for layer in layers:
        if isinstance(layer, MaskLayer):
            for value, label in enumerate(layer.labels, start=1):
                drawn = outlines(layer.mask == value)
                for outline in drawn:
                    graphics.append(hd.pr.GraphicObject("POLYLINE", outline, "PIXEL"))
                if drawn:
                    top = drawn[0][np.argmin(drawn[0][:, 1])]
                    texts.append(_caption(label, (float(top[0]), float(top[1])), text_size, rows, columns))
        elif isinstance(layer, BoxLayer):
            for xyxy, caption in layer.boxes:
                x1, x2 = np.clip([xyxy[0], xyxy[2]], 0, columns)
                y1, y2 = np.clip([xyxy[1], xyxy[3]], 0, rows)
                corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=np.float64)
                graphics.append(hd.pr.GraphicObject("POLYLINE", corners, "PIXEL"))
                texts.append(_caption(caption, (float(x1), float(y1)), text_size, rows, columns))
        elif isinstance(layer, PointLayer):
            for (x, y), caption in layer.points:
                x, y = float(np.clip(x, 0, columns)), float(np.clip(y, 0, rows))
                rim = x + radius if x + radius <= columns else x - radius
                graphics.append(hd.pr.GraphicObject("CIRCLE", np.array([[x, y], [rim, y]]), "PIXEL"))
                texts.append(_caption(caption, (x, y), text_size, rows, columns, beside=radius))
    return graphics, texts


def _caption(text: str, anchor: tuple[float, float], size: float, rows: int, columns: int, *, beside: float = 0.0):
    """A text object anchored at ``anchor`` (PIXEL), its box ``size`` pixels high above the
    anchor (``beside`` = 0) or to the right of it at that distance, moved inside the image."""
    import highdicom as hd

    width = min(float(columns), max(size, 0.6 * size * len(text)))
    height = min(float(rows), size)
    x, y = anchor
    left, top = (x, y - height) if not beside else (x + beside, y - height / 2)
    if top < 0 and not beside:
        top = y
    left = min(max(left, 0.0), columns - width)
    top = min(max(top, 0.0), rows - height)
    return hd.pr.TextObject(text, "PIXEL", bounding_box=(left, top, left + width, top + height), anchor_point=anchor,
                            text_justification="LEFT", anchor_point_visible=False)


def _banner(lines: Sequence[str], first_line: int) -> list:
    """Text objects, one per line, stacked from the top left of the displayed area (DISPLAY units)."""
    import highdicom as hd

    texts = []
    for index, line in enumerate(lines, start=first_line):
        top = min(0.01 + index * _BANNER_LINE, 1.0 - _BANNER_LINE)
        texts.append(hd.pr.TextObject(line[:1024], "DISPLAY", bounding_box=(0.01, top, 0.75, top + _BANNER_LINE),
                                      text_justification="LEFT"))
    return texts


def _layer(name: str, order: int, description: str, rgb: tuple[int, int, int]):
    import highdicom as hd

    layer = hd.pr.GraphicLayer(name, order, description=long_string(description),
                               display_color=hd.color.CIELabColor.from_rgb(*rgb))
    # Grayscale reading monitors draw the layer white.
    layer.GraphicLayerRecommendedDisplayGrayscaleValue = 0xFFFF
    return layer


def _layer_name(model_id: str, taken: Sequence[str]) -> str:
    """A Code String (PS3.5 6.2: at most 16 of A-Z 0-9 _ and space) naming ``model_id``'s
    layer, unique among ``taken``."""
    base = re.sub(r"[^A-Z0-9]+", "_", model_id.upper()).strip("_")
    base = ("M" + base if base[:1].isdigit() else base)[:16].rstrip("_") or "MODEL"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base[:16 - len(str(number)) - 1].rstrip('_')}_{number}"
    return name


def _numbers(value: Any) -> list[float]:
    """A DS attribute's values as floats; none when absent or not numeric."""
    if value is None or value == "":
        return []
    try:
        return [float(v) for v in (value if isinstance(value, MultiValue) else [value])]
    except (TypeError, ValueError):
        return []
