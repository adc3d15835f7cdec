"""Make the HTJ2K phantoms of this folder and their entries in index.json.

The same 384 x 320 12-bit crop as every other file here (``radedge.export.phantoms``,
``transfer_syntax_phantoms``), in MONOCHROME2 and MONOCHROME1, as HTJ2K Lossless
(1.2.840.10008.1.2.4.201) and HTJ2K Lossless RPCL (.202), encoded by OpenJPH through
imagecodecs (``radedge.export.phantoms.dicom.encode_htj2k``). Only these four files are
written and only their index entries replaced, so the other phantoms stay byte for byte as
committed; ``python -m radedge.export.phantoms transfer-syntaxes`` writes all of them the same
way. The decoders must return the source's stored values exactly (the index's
``original_sha256``).

    python tests/data/transfer_syntaxes/make_htj2k.py [output-directory]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydicom.uid import HTJ2KLossless, HTJ2KLosslessRPCL

from radedge.export.phantoms import write_transfer_syntax_set

HERE = Path(__file__).resolve().parent


def make(output: Path) -> list[Path]:
    return write_transfer_syntax_set(output, syntaxes=(HTJ2KLossless, HTJ2KLosslessRPCL))


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
