"""The serve tests' PACS and modality fixtures, checked against the real programs: Orthanc as
the PACS, dcmtk's storescu as the modality, pynetdicom as a counting storage SCP."""

from __future__ import annotations

import importlib.util
import io
import socket
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    JPEGLSLossless,
    generate_uid,
)

from . import orthanc as orthanc_module
from .dicomtools import (
    OUTPUT_SOP_CLASSES,
    PLANTED_PHI,
    StoreCounter,
    StoreCounterError,
    StorescuConversionError,
    StoreStatus,
    dcmtk_missing_reason,
    find_phi,
    parse_store_statuses,
    storescu,
    unique_copies,
)
from .orthanc import Orthanc, OrthancError, orthanc_missing_reason

REPO = Path(__file__).resolve().parents[2]
EXPLICIT_FILE = REPO / "tests/data/transfer_syntaxes/explicit_vr_le_mono2.dcm"
JPEG_LS_FILE = REPO / "examples/radiographs/femur_malignant.dcm"
JPEG_LOSSLESS_FILE = REPO / "tests/data/io/CR1_6154_jpeg_lossless_sv1.dcm"
DEFLATED_FILE = REPO / "tests/data/transfer_syntaxes/deflated_le_mono2.dcm"
SMALL_JPEG_LS_FILE = REPO / "tests/data/transfer_syntaxes/jpeg_ls_lossless_mono2.dcm"
PREFIX = "1.2.826.0.1.3680043.8.498.7731."

needs_orthanc = pytest.mark.skipif(orthanc_missing_reason() is not None, reason=str(orthanc_missing_reason()))
needs_dcmtk = pytest.mark.skipif(dcmtk_missing_reason() is not None, reason=str(dcmtk_missing_reason()))
needs_pynetdicom = pytest.mark.skipif(
    importlib.util.find_spec("pynetdicom") is None, reason="pynetdicom is not installed (pip install radedge[serve])"
)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    if orthanc_missing_reason():
        pytest.skip(orthanc_missing_reason())
    with Orthanc(tmp_path_factory.mktemp("pacs"), aet="PACS") as orthanc:
        yield orthanc


def output_instance(sop_class_uid: str, syntax: str, path: Path) -> Path:
    """A header-only instance of `sop_class_uid` (no IOD content): enough for a storage SCP,
    which negotiates and files by SOP class, not by content."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = generate_uid(PREFIX)
    meta.TransferSyntaxUID = syntax
    instance = Dataset()
    instance.file_meta = meta
    instance.SOPClassUID = sop_class_uid
    instance.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    instance.StudyInstanceUID = generate_uid(PREFIX)
    instance.SeriesInstanceUID = generate_uid(PREFIX)
    instance.PatientID = "PH-SERVE-0001"
    instance.PatientName = "PHANTOM^SERVE"
    instance.Modality = "OT"
    instance.save_as(path, enforce_file_format=True)
    return path


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


# -- Orthanc + storescu ------------------------------------------------------------------------


@needs_orthanc
@needs_dcmtk
def test_storescu_sends_each_file_in_its_own_syntax_and_orthanc_keeps_it(pacs, tmp_path):
    (deflated,) = unique_copies(DEFLATED_FILE, tmp_path, 1, prefix_uid=PREFIX)
    files = [EXPLICIT_FILE, JPEG_LS_FILE, JPEG_LOSSLESS_FILE, deflated]
    syntaxes = [transfer_syntax(file) for file in files]
    assert syntaxes == [ExplicitVRLittleEndian, JPEGLSLossless, JPEGLosslessSV1, DeflatedExplicitVRLittleEndian]

    sent = storescu("127.0.0.1", pacs.dicom_port, files, called_aet="PACS", calling_aet="MODALITY1")

    assert parse_store_statuses(sent.stderr) == [(str(file), 0x0000) for file in files], sent.stderr[-3000:]
    assert sent.stderr.count("Requesting Association") == 1
    assert pacs.wait_for_count(len(files), timeout_s=10) >= len(files)
    for file, syntax in zip(files, syntaxes):
        source = pydicom.dcmread(file)
        assert source.SOPInstanceUID in pacs.sop_instance_uids()
        instance_id = pacs.instance_id_of(source.SOPInstanceUID)
        stored = pydicom.dcmread(io.BytesIO(pacs.instance_file(instance_id)))
        assert stored.SOPInstanceUID == source.SOPInstanceUID
        # Stored as sent: the syntax, and the (compressed) pixel data byte for byte.
        assert stored.file_meta.TransferSyntaxUID == syntax
        assert stored.PixelData == source.PixelData
        assert pacs.instance_tags(instance_id)["SOPInstanceUID"] == source.SOPInstanceUID
        metadata = pacs.instance_metadata(instance_id)
        assert (metadata["RemoteAET"], metadata["CalledAET"]) == ("MODALITY1", "PACS")


@needs_orthanc
@needs_dcmtk
def test_orthanc_refuses_a_sender_that_calls_another_ae_title(pacs, tmp_path):
    (image,) = unique_copies(JPEG_LOSSLESS_FILE, tmp_path, 1, prefix_uid=PREFIX)

    sent = storescu("127.0.0.1", pacs.dicom_port, [image], called_aet="NOT-PACS")

    assert sent.returncode != 0
    assert "Called AE Title Not Recognized" in sent.stderr
    assert parse_store_statuses(sent.stderr) == []
    assert pacs.instance_id_of(pydicom.dcmread(image).SOPInstanceUID) is None


@needs_orthanc
@needs_dcmtk
def test_orthanc_accepts_every_class_radedge_forwards(pacs, tmp_path):
    files = [
        output_instance(uid, ExplicitVRLittleEndian, tmp_path / f"{i}.dcm")
        for i, uid in enumerate(OUTPUT_SOP_CLASSES.values())
    ]

    sent = storescu("127.0.0.1", pacs.dicom_port, files, called_aet="PACS")

    assert parse_store_statuses(sent.stderr) == [(str(file), 0x0000) for file in files], sent.stderr[-3000:]
    for file, sop_class_uid in zip(files, OUTPUT_SOP_CLASSES.values()):
        instance_id = pacs.instance_id_of(pydicom.dcmread(file).SOPInstanceUID)
        assert instance_id is not None, f"{sop_class_uid} answered success but was not stored"
        assert pacs.instance_metadata(instance_id)["SopClassUid"] == sop_class_uid


@needs_orthanc
@needs_dcmtk
def test_stopped_orthanc_refuses_and_restarts_on_the_same_ports_with_its_instances(pacs, tmp_path):
    first, second = unique_copies(JPEG_LOSSLESS_FILE, tmp_path, 2, prefix_uid=PREFIX)
    first_uid, second_uid = (pydicom.dcmread(file).SOPInstanceUID for file in (first, second))
    sent = storescu("127.0.0.1", pacs.dicom_port, [first], called_aet="PACS")
    assert parse_store_statuses(sent.stderr) == [(str(first), 0x0000)]
    stored_before = pacs.sop_instance_uids()
    assert first_uid in stored_before
    ports = (pacs.dicom_port, pacs.http_port)

    pacs.stop()
    try:
        assert not pacs.running
        down = storescu("127.0.0.1", pacs.dicom_port, [second], called_aet="PACS")
        assert down.returncode != 0
        assert "Connection refused" in down.stderr
        assert not any(status.status == 0x0000 for status in parse_store_statuses(down.stderr))
    finally:
        pacs.start()

    assert (pacs.dicom_port, pacs.http_port) == ports
    assert pacs.sop_instance_uids() == stored_before
    sent = storescu("127.0.0.1", pacs.dicom_port, [second], called_aet="PACS")
    assert parse_store_statuses(sent.stderr) == [(str(second), 0x0000)]
    assert pacs.wait_for_count(len(stored_before) + 1, timeout_s=10) == len(stored_before) + 1
    assert second_uid in pacs.sop_instance_uids()


@needs_orthanc
def test_orthanc_moves_off_a_port_taken_before_it_binds_but_not_off_a_named_one(tmp_path, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        with pytest.raises(OrthancError, match="already in use"):
            Orthanc(tmp_path / "named", dicom_port=taken).start()

        probes = iter([taken])
        real_free_port = orthanc_module.free_port
        monkeypatch.setattr(orthanc_module, "free_port", lambda: next(probes, None) or real_free_port())
        with Orthanc(tmp_path / "chosen") as pacs:
            assert pacs.running
            assert pacs.dicom_port != taken
            assert pacs.system()["DicomPort"] == pacs.dicom_port
            assert "already in use" in pacs.log_path.read_text()
            pacs.kill()  # nothing here needs a graceful stop's 3 s
        assert not pacs.running


@needs_orthanc
@needs_dcmtk
def test_killed_orthanc_comes_back_with_what_it_acknowledged(tmp_path):
    first, second = unique_copies(JPEG_LOSSLESS_FILE, tmp_path / "images", 2, prefix_uid=PREFIX)
    with Orthanc(tmp_path / "pacs") as pacs:
        sent = storescu("127.0.0.1", pacs.dicom_port, [first], called_aet="PACS")
        assert parse_store_statuses(sent.stderr) == [(str(first), 0x0000)]

        pacs.kill()
        down = storescu("127.0.0.1", pacs.dicom_port, [second], called_aet="PACS")
        assert down.returncode != 0

        pacs.start()
        assert pacs.sop_instance_uids() == [pydicom.dcmread(first).SOPInstanceUID]
        pacs.kill()


# -- StoreCounter ------------------------------------------------------------------------------


@needs_dcmtk
@needs_pynetdicom
def test_store_counter_counts_an_instance_sent_twice():
    uid = pydicom.dcmread(EXPLICIT_FILE).SOPInstanceUID
    with StoreCounter(ae_title="COUNTER") as counter:
        sent = storescu("127.0.0.1", counter.port, [EXPLICIT_FILE, EXPLICIT_FILE], called_aet="COUNTER", calling_aet="RADEDGE")
        assert parse_store_statuses(sent.stderr) == [(str(EXPLICIT_FILE), 0x0000)] * 2

        assert counter.count_by_uid() == {uid: 2}
        assert [(item.calling_aet, item.transfer_syntax) for item in counter.received] == [
            ("RADEDGE", ExplicitVRLittleEndian)
        ] * 2
        assert counter.received[0].dataset.SOPInstanceUID == uid


@needs_dcmtk
@needs_pynetdicom
def test_store_counter_takes_every_output_class_in_both_little_endian_syntaxes(tmp_path):
    files = [
        output_instance(uid, syntax, tmp_path / f"{i}_{j}.dcm")
        for i, uid in enumerate(OUTPUT_SOP_CLASSES.values())
        for j, syntax in enumerate([ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ]
    with StoreCounter(ae_title="COUNTER") as counter:
        sent = storescu("127.0.0.1", counter.port, files, called_aet="COUNTER")

        assert parse_store_statuses(sent.stderr) == [(str(file), 0x0000) for file in files]
        assert [(item.sop_class_uid, item.transfer_syntax) for item in counter.received] == [
            (uid, syntax)
            for uid in OUTPUT_SOP_CLASSES.values()
            for syntax in [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
        ]


@needs_dcmtk
@needs_pynetdicom
def test_store_statuses_name_the_file_the_peer_refused(tmp_path):
    files = unique_copies(JPEG_LOSSLESS_FILE, tmp_path, 3, prefix_uid=PREFIX, shared_study=True)
    refused_uid = pydicom.dcmread(files[1]).SOPInstanceUID
    with StoreCounter(
        ae_title="COUNTER",
        status=lambda dataset: 0x0122 if dataset.SOPInstanceUID == refused_uid else 0x0000,
        transfer_syntaxes=[JPEGLosslessSV1],
    ) as counter:
        sent = storescu("127.0.0.1", counter.port, files, called_aet="COUNTER")

        assert parse_store_statuses(sent.stderr) == [
            StoreStatus(str(files[0]), 0x0000),
            StoreStatus(str(files[1]), 0x0122),
            StoreStatus(str(files[2]), 0x0000),
        ]
        assert [item.status for item in counter.received] == [0x0000, 0x0122, 0x0000]


@needs_dcmtk
@needs_pynetdicom
def test_storescu_will_not_decompress_a_file_for_a_peer_that_refuses_its_syntax():
    # Both files are DX images: the peer accepts DX in Explicit VR only, so storescu would send
    # the JPEG-LS file through the Explicit VR context, decompressed (or fail trying).
    with StoreCounter(ae_title="COUNTER", transfer_syntaxes=[ExplicitVRLittleEndian]) as counter:
        with pytest.raises(StorescuConversionError, match="JPEG-LS Lossless -> Little Endian Explicit"):
            storescu("127.0.0.1", counter.port, [EXPLICIT_FILE, SMALL_JPEG_LS_FILE], called_aet="COUNTER")
        assert [item.transfer_syntax for item in counter.received] == [ExplicitVRLittleEndian]


@needs_dcmtk
@needs_pynetdicom
def test_store_counter_raises_what_its_handler_raised():
    def broken(dataset):
        raise ValueError("handler bug")

    counter = StoreCounter(ae_title="COUNTER", status=broken)
    sent = storescu("127.0.0.1", counter.port, [EXPLICIT_FILE], called_aet="COUNTER")

    assert parse_store_statuses(sent.stderr) == [(str(EXPLICIT_FILE), 0xC211)]
    with pytest.raises(StoreCounterError) as raised:
        counter.stop()
    assert isinstance(raised.value.__cause__, ValueError)


# -- unique_copies and find_phi ----------------------------------------------------------------


def test_unique_copies_keep_the_compressed_pixels_and_carry_the_planted_phi(tmp_path):
    source = pydicom.dcmread(SMALL_JPEG_LS_FILE)
    copies = unique_copies(SMALL_JPEG_LS_FILE, tmp_path, 3, prefix_uid=PREFIX, plant_phi=PLANTED_PHI)
    read = [pydicom.dcmread(path) for path in copies]

    uids = [copy.SOPInstanceUID for copy in read]
    assert len(set(uids)) == 3 and source.SOPInstanceUID not in uids
    assert all(uid.startswith(PREFIX) for uid in uids)
    assert [copy.file_meta.MediaStorageSOPInstanceUID for copy in read] == uids
    assert len({copy.StudyInstanceUID for copy in read}) == 3
    for copy in read:
        assert copy.file_meta.TransferSyntaxUID == JPEGLSLossless
        assert copy.PixelData == source.PixelData
        assert copy.PatientName == "Zyxwv^Planted" and copy.AccessionNumber == "ACC9931ZX"

    assert sorted(find_phi(copies[0])) == sorted(
        [
            f"{copies[0]} (0008,0020) StudyDate: '19310917' (PatientBirthDate/StudyDate)",
            f"{copies[0]} (0008,0050) AccessionNumber: 'acc9931zx' (AccessionNumber)",
            f"{copies[0]} (0008,0080) InstitutionName: 'planted general' (InstitutionName)",
            f"{copies[0]} (0010,0010) PatientName: 'zyxwv' (PatientName)",
            f"{copies[0]} (0010,0020) PatientID: 'phi-7731-zx' (PatientID)",
            f"{copies[0]} (0010,0030) PatientBirthDate: '19310917' (PatientBirthDate/StudyDate)",
        ]
    )
    assert find_phi(SMALL_JPEG_LS_FILE) == []


def test_unique_copies_of_one_study_share_study_and_series(tmp_path):
    copies = unique_copies(JPEG_LOSSLESS_FILE, tmp_path, 3, prefix_uid=PREFIX, shared_study=True)
    read = [pydicom.dcmread(path) for path in copies]

    assert len({copy.SOPInstanceUID for copy in read}) == 3
    assert len({(copy.StudyInstanceUID, copy.SeriesInstanceUID) for copy in read}) == 1
    assert read[0].StudyInstanceUID != pydicom.dcmread(JPEG_LOSSLESS_FILE).StudyInstanceUID
    assert [copy.InstanceNumber for copy in read] == [1, 2, 3]
    assert "PatientName" in read[0] and read[0].PatientName != PLANTED_PHI["PatientName"]


def test_find_phi_sees_the_planted_values_however_they_are_written(tmp_path):
    log = tmp_path / "logs" / "serve.log"
    log.parent.mkdir()
    log.write_text("study of ZYXWV, Planted\n")

    hits = find_phi(["born 17.09.1931", "exam 1931-09-17 at Planted General", tmp_path])

    assert hits == [
        "text[0] @5: '17.09.1931' (PatientBirthDate/StudyDate)",
        "text[1] @5: '1931-09-17' (PatientBirthDate/StudyDate)",
        "text[1] @19: 'planted general' (InstitutionName)",
        f"{log} @9: 'zyxwv' (PatientName)",
    ]
    assert find_phi(["PHANTOM^LONGBONE^0013 PH-LO-000013 20251127 A100000013"]) == []


def test_find_phi_reads_dicom_files_by_element_not_their_pixel_bytes():
    # The example images' compressed pixel ramps contain the bytes "zyxwv"; only their
    # elements are searched, so none of them holds anything that looks planted.
    assert b"zyxwv" in (REPO / "examples/radiographs/femur_no_tumour.dcm").read_bytes().lower()
    assert find_phi(REPO / "examples") == []
