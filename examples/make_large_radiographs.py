"""Write a 3000 x 3000 12-bit femur radiograph (the bone-tumor model's phantom at detector
size) in the transfer syntaxes consoles receive, for ``radedge bench``:

    .venv/bin/python examples/make_large_radiographs.py --out out/large
    radedge bench --baseline --inputs out/large --out out/bench-large

Files: uncompressed (Explicit VR Little Endian), JPEG-LS Lossless, JPEG 2000 Lossless and
HTJ2K Lossless, the same pixels in each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEG2000Lossless, JPEGLSLossless

from radedge.export.phantoms import long_bone_radiograph, write_dicom

SYNTAXES = {"uncompressed": ExplicitVRLittleEndian, "jpeg_ls_lossless": JPEGLSLossless,
            "j2k_lossless": JPEG2000Lossless, "htj2k_lossless": HTJ2KLossless}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the files into")
    parser.add_argument("--side", type=int, default=3000, help="rows and columns")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    phantom = long_bone_radiograph(7, label="benign", bits_stored=12, rows=args.side, columns=args.side)
    for name, syntax in SYNTAXES.items():
        path = write_dicom(phantom, args.out / f"femur_{args.side}_{name}.dcm", transfer_syntax=syntax)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
