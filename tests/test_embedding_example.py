"""examples/embed_in_console.py, the program docs/embedding.md walks through, run as a vendor
would run it: from outside the repository, on a folder holding a good radiograph, a CT slice,
a file cut short and a text file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_embedding_example_branches_on_codes(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(ROOT / "examples/radiographs/femur_malignant.dcm", folder / "a_femur.dcm")
    shutil.copy(ROOT / "examples/ct/ct_vertebra_normal.dcm", folder / "b_ct.dcm")
    (folder / "c_cut.dcm").write_bytes((ROOT / "examples/radiographs/tibia_benign.dcm").read_bytes()[:3000])
    (folder / "d_notes.txt").write_text("not an image")
    result = subprocess.run([sys.executable, str(ROOT / "examples/embed_in_console.py"), str(folder)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("a_femur.dcm: SUSPECTED_MALIGNANT_BONE_LESION")
    assert lines[1] == "b_ct.dcm: no flags"
    assert lines[2] == "c_cut.dcm: Image incomplete: send it again [input.truncated_pixel_data]"
    assert lines[3] == "d_notes.txt: Not an image radedge can read [input.not_dicom]"
    # The femur again, as a receiver hands it over: without file meta, its syntax given.
    assert lines[4].startswith("received data set (") and "analysed=True, 2 flag(s)" in lines[4]
    assert lines[5].endswith("from_dict gives the same flags: True")
    assert int(lines[5].split("pickled ")[1].split(" KiB")[0]) < 100
    assert lines[6] == "4 file(s) analysed"
