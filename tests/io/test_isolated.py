"""``IsolatedReader`` and ``radedge run --time-budget``: reading in a worker process gives the
image ``read_image`` gives, the same refusals, and stops a read that outlives its budget
while the files after it are still analysed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from radedge.cli import main
from radedge.errors import NotDicomError, TimeBudgetExceededError
from radedge.io import IsolatedReader, read_image

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "tests/data/transfer_syntaxes/explicit_vr_le_mono2.dcm"
# The largest JPEG 2000 example: about 150 ms to decode on one core, far over a 20 ms budget.
SLOW = REPO / "examples/radiographs/tibia_benign.dcm"


@pytest.fixture(scope="module")
def reader():
    with IsolatedReader(time_budget_s=30) as shared:
        yield shared


@pytest.mark.parametrize("path", [SMALL, SLOW], ids=["native", "jpeg2000"])
def test_it_reads_what_read_image_reads(reader, path):
    isolated, direct = reader.read(path), read_image(path)
    np.testing.assert_array_equal(isolated.pixels, direct.pixels)
    assert (isolated.intensity, isolated.source, isolated.spacing) == (direct.intensity, direct.source, direct.spacing)
    from_bytes = reader.read(path.read_bytes())
    np.testing.assert_array_equal(from_bytes.pixels, direct.pixels)


def test_refusals_arrive_as_read_image_raises_them(reader, tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not an image")
    with pytest.raises(NotDicomError, match="notes.dcm"):
        reader.read(text)


def test_a_read_past_its_budget_is_stopped_and_named():
    with IsolatedReader(time_budget_s=0.02) as strict:
        strict.start()
        with pytest.raises(TimeBudgetExceededError, match=r"tibia_benign.dcm.*0\.02 s") as caught:
            strict.read(SLOW)
        assert caught.value.limit == 0.02
        assert strict.read(SMALL).rows == read_image(SMALL).rows  # a new worker reads the next file


def test_radedge_run_goes_on_after_a_file_over_its_budget(tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(SLOW, folder / "a_slow.dcm")
    shutil.copy(SMALL, folder / "b_small.dcm")
    code = main(["run", str(folder), "--time-budget", "0.02", "--out", str(tmp_path / "out"), "--no-overlay"])
    captured = capsys.readouterr()
    assert code == 1
    assert "a_slow.dcm  ERROR TimeBudgetExceededError" in captured.err
    assert "b_small.dcm" in captured.out and "2 image(s)" in captured.out and "1 failed" in captured.out
    assert (tmp_path / "out" / "b_small.json").is_file() and not (tmp_path / "out" / "a_slow.json").exists()


def test_a_negative_budget_is_a_usage_error(tmp_path, capsys):
    assert main(["run", str(SMALL), "--time-budget", "-1"]) == 2
    assert "--time-budget -1 is negative" in capsys.readouterr().err


def test_an_application_script_without_a_main_guard_can_use_it(tmp_path):
    # multiprocessing's spawn would re-run this script in the worker, recursively.
    script = tmp_path / "console_app.py"
    script.write_text(
        "from radedge.io import IsolatedReader\n"
        "reader = IsolatedReader()\n"
        f"print('rows', reader.read({str(SMALL)!r}).rows)\n"
        "reader.close()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rows", str(read_image(SMALL).rows)]
