"""Is there anything in an image for a model to analyse? (DESIGN.md, "Inputs it refuses, and how")

Scope (``scope.py``) asks, from the metadata, whether an image is one a model was made for.
This asks whether its pixels can mean anything to the model at all; where they cannot, a
model's output would be a confident answer about nothing, so the image gets no flag
decision. Each check raises ``NotAnalysableError`` with the reason:

- ``check_size``: the rectangle the model analyses (the whole image, or a second-stage
  model's region) has fewer than ``MIN_SIDE`` rows or columns, or fewer than
  1 / ``MAX_UPSCALE`` of the model input's pixels: each of its pixels would be stretched
  over more than ``MAX_UPSCALE`` input pixels (8-fold per side), far past what any model
  was trained to see.
- ``check_signal``: every pixel is pixel padding (PS3.3 C.7.5.1.1.2): the image holds no
  signal, whatever the table.
- ``check_contrast``: the intensity table gives every stored value present outside the
  padding one and the same display intensity (a uniform image, a window far outside the
  values present), so the model would see a blank input. Counted over the whole image, as
  the table is built for the whole image.

Header values that leave the table itself without meaning (a Rescale Slope that is not
finite or is denormal, an absurd window) are refused where the table is built, by
``radedge.intensity.build_lut``, with the same error.

``Model.predict`` lets the error through, as it lets ``OutOfScopeError`` through;
``ModelSet.predict`` records it per model (``ImageAnalysis.not_analysable``), and an image
no model analysed is "not analysed" with the reason.
"""

from __future__ import annotations

from ..errors import NotAnalysableError
from ..intensity import IntensityLut, stored_value_histogram
from ..io.image import Image
from ..spec.manifest import Manifest

#: The fewest rows and columns a model analyses.
MIN_SIDE = 8
#: The most model-input pixels one source pixel may be stretched over (8-fold per side).
MAX_UPSCALE = 64


def check_size(manifest: Manifest, rows: int, columns: int, *, region: bool = False) -> None:
    """Raise ``NotAnalysableError`` when a ``rows`` x ``columns`` image (``region``: a region of
    one, a second-stage model's input) has too few pixels for ``manifest``'s model input
    (module docstring)."""
    height, width = manifest.input_shape[-2:]
    fewest = -(-height * width // MAX_UPSCALE)
    if rows >= MIN_SIDE and columns >= MIN_SIDE and rows * columns >= fewest:
        return
    what, advice = (("the region to analyse", "A region this small is left unclassified.") if region else
                    ("the image", "Send the image at its full resolution."))
    raise NotAnalysableError(
        f"{what} is {rows} x {columns} pixels, too few for {manifest.model_id}, whose input is {height} x {width}: "
        f"it needs at least {MIN_SIDE} rows and {MIN_SIDE} columns and at least {fewest} pixels (1/{MAX_UPSCALE} of "
        f"its input), or it would see a few pixels stretched into a blur. {advice}"
    )


def check_signal(image: Image) -> None:
    """Raise ``NotAnalysableError`` when every pixel of ``image`` is pixel padding."""
    padding = image.intensity.pixel_padding
    pixels = image.pixels
    # An empty image is check_size's to refuse.
    if padding is None or pixels.size == 0:
        return
    # Padding is one range of stored values: the image is all padding when its extremes are.
    if padding.low <= int(pixels.min()) and int(pixels.max()) <= padding.high:
        raise _all_padding(padding)


def check_contrast(image: Image, lut: IntensityLut, *, threads: int = 0) -> None:
    """Raise ``NotAnalysableError`` when ``lut`` gives every stored value present in ``image``
    outside the pixel padding the same display intensity (or no pixel lies outside it)."""
    padding = image.intensity.pixel_padding
    pixels = image.pixels
    if pixels.size == 0:
        return
    first = lut.first_stored_value
    table = lut.table
    # Usually the darkest and the brightest pixel already differ under the table, and cost a
    # fraction of a histogram of the whole image.
    darkest, brightest = int(pixels.min()), int(pixels.max())
    ends_present = padding is None or not (padding.low <= darkest <= padding.high or padding.low <= brightest
                                           <= padding.high)
    if ends_present and table[darkest - first] != table[brightest - first]:
        return
    present = stored_value_histogram(image, threads=threads) > 0
    if not present.any():
        raise _all_padding(padding)
    outputs = table[present]
    if outputs.min() == outputs.max():
        values = present.nonzero()[0] + first
        held = (f"stored value {values[0]}" if values.size == 1 else
                f"{values.size} stored values ({values[0]} to {values[-1]})")
        raise NotAnalysableError(
            f"the image is uniform: its pixels hold {held}{' outside the pixel padding' if padding else ''}, which "
            f"all display as intensity {float(outputs[0]):.4g} after {lut.description}, so there is nothing to "
            "analyse. An image needs at least two intensities after windowing; check the image and its window."
        )


def _all_padding(padding) -> NotAnalysableError:
    which = (f"stored value {padding.low}" if padding.low == padding.high else
             f"stored values {padding.low} to {padding.high}")
    return NotAnalysableError(
        f"every pixel is pixel padding ({which}, Pixel Padding Value (0028,0120) / Range Limit (0028,0121)): the "
        "image holds no signal to analyse. Check the padding the modality writes; an image needs pixels outside it."
    )
