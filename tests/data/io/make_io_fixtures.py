"""Make the JPEG Lossless DICOM fixtures of tests/io with dcmtk's dcmcjpeg.

pydicom's wheel ships no JPEG Lossless (Process 14) file, so these are encoded here from
its uncompressed test files; the decoder tests check that they decode to exactly the
stored values of their source. dcmcjpeg output is deterministic for a given input and
dcmtk version (3.6.7 made the committed files).

    python tests/data/io/make_io_fixtures.py [output-directory]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

HERE = Path(__file__).resolve().parent

#: output file -> (pydicom test file it is encoded from, dcmcjpeg options)
FIXTURES = {
    # Process 14, Selection Value 1 (1.2.840.10008.1.2.4.70); 16-bit signed MR.
    "MR_small_jpeg_lossless_sv1.dcm": ("MR_small.dcm", ["+e1"]),
    # Process 14 with Selection Value 6 (1.2.840.10008.1.2.4.57).
    "MR_small_jpeg_lossless_p14_sv6.dcm": ("MR_small.dcm", ["+el", "+sv", "6"]),
    # 12-bit unsigned MONOCHROME1 CR, SV1.
    "CR1_6154_jpeg_lossless_sv1.dcm": ("dicomdirtests/77654033/CR1/6154", ["+e1"]),
}


def make(output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    made = []
    for name, (source, options) in FIXTURES.items():
        target = output / name
        subprocess.run(["dcmcjpeg", *options, get_testdata_file(source), str(target)], check=True)
        made.append(target)
    return made


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
