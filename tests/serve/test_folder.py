"""The watched folder: a file is taken once it holds still, leaves the folder once it is safe
in the inbox, and one that is not an image is moved aside under a name that reveals nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from radedge.serve.config import AnalysisConfig, FolderConfig
from radedge.serve.folder import FolderWatcher
from radedge.serve.intake import Intake
from radedge.serve.journal import RECEIVED, REFUSED, Journal
from radedge.serve.state import StateFolder

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "examples" / "radiographs" / "femur_malignant.dcm"


@pytest.fixture
def watching(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    state = StateFolder(tmp_path / "state")
    journal = Journal(state.journal)
    intake = Intake(journal, state, AnalysisConfig(min_free_mb=0), lambda key: None)
    watcher = FolderWatcher(FolderConfig(drop, poll_interval_s=0.1), intake, state)
    yield drop, state, journal, watcher
    journal.close()


def test_a_file_is_taken_once_it_held_still_and_then_leaves_the_folder(watching):
    drop, state, journal, watcher = watching
    shutil.copy(IMAGE, drop / "Doe_John_19310917.dcm")
    assert watcher.poll() == 0, "a file seen for the first time may still be being written"
    assert watcher.poll() == 1
    assert list(drop.iterdir()) == []
    [instance] = journal.all_instances()
    assert (instance.state, instance.via) == (RECEIVED, "folder")
    assert (state.inbox / instance.file).read_bytes() == IMAGE.read_bytes()


def test_a_growing_file_waits(watching):
    drop, _, journal, watcher = watching
    data = IMAGE.read_bytes()
    target = drop / "image.dcm"
    target.write_bytes(data[:1000])
    watcher.poll()
    target.write_bytes(data)
    assert watcher.poll() == 0
    assert watcher.poll() == 1
    assert len(journal.all_instances()) == 1


def test_the_same_image_dropped_twice_is_kept_once(watching):
    drop, _, journal, watcher = watching
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(IMAGE, drop / name)
    watcher.poll()
    assert watcher.poll() == 2
    [instance] = journal.all_instances()
    assert instance.duplicates == 1 and list(drop.iterdir()) == []


def test_partial_copies_hidden_files_and_notes_are_left_alone(watching):
    drop, _, journal, watcher = watching
    for name in ("image.dcm.part", ".image.dcm", "notes.txt"):
        shutil.copy(IMAGE, drop / name)
    watcher.poll()
    assert watcher.poll() == 0
    assert journal.all_instances() == [] and len(list(drop.iterdir())) == 3


def test_a_file_that_is_not_an_image_moves_aside_without_its_name(watching):
    drop, state, journal, watcher = watching
    (drop / "Doe_John.dcm").write_bytes(b"%PDF-1.7 not an image at all" * 20)
    watcher.poll()
    assert watcher.poll() == 1
    assert list(drop.iterdir()) == []
    [instance] = journal.all_instances()
    assert instance.state == REFUSED and "not DICOM" in instance.reason
    moved = sorted(path.name for path in state.rejected.iterdir())
    assert moved == [f"{instance.key}.dcm", f"{instance.key}.reason.txt"]
    assert "Doe" not in "".join(moved)


def test_a_png_is_taken_keyed_by_its_content(watching, tmp_path):
    import cv2
    import numpy as np

    drop, _, journal, watcher = watching
    cv2.imwrite(str(drop / "knee.png"), (np.arange(256 * 256) % 4096).reshape(256, 256).astype(np.uint16))
    watcher.poll()
    assert watcher.poll() == 1
    [instance] = journal.all_instances()
    assert instance.uid.startswith("sha256:") and instance.file.endswith(".png")
