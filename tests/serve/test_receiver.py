"""The C-STORE receiver, driven by a real pynetdicom client on loopback: what a sender hears
for each kind of object, and that the service keeps taking images whatever arrives."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from radedge.serve.config import AnalysisConfig, ReceiverConfig, TlsConfig
from radedge.serve.intake import Intake
from radedge.serve.journal import REFUSED, Journal
from radedge.serve.receiver import StorageReceiver
from radedge.serve.state import StateFolder

from .orthanc import free_port

ROOT = Path(__file__).resolve().parents[2]
UNCOMPRESSED = ROOT / "tests" / "data" / "transfer_syntaxes" / "explicit_vr_le_mono2.dcm"
JPEG_2000 = ROOT / "examples" / "radiographs" / "tibia_benign.dcm"


class Receiving:
    """A receiver with its journal and inbox, and no analysis: what senders hear."""

    def __init__(self, folder: Path, *, max_queue: int = 100, allowed: tuple[str, ...] = (), tls=None):
        self.state = StateFolder(folder / "state")
        self.journal = Journal(self.state.journal)
        self.arrived: list[str] = []
        self.intake = Intake(self.journal, self.state, AnalysisConfig(max_queue=max_queue, min_free_mb=0),
                             self.arrived.append)
        self.config = ReceiverConfig(port=free_port(), allowed_calling_ae_titles=allowed, tls=tls,
                                     network_timeout_s=10)
        self.receiver = StorageReceiver(self.config, self.intake)
        self.receiver.start()

    def close(self) -> None:
        self.receiver.stop()
        self.journal.close()


@pytest.fixture
def receiving(tmp_path):
    receiving = Receiving(tmp_path)
    yield receiving
    receiving.close()


def _send(port: int, *datasets: Dataset, calling: str = "MODALITY", tls_args=None) -> list[Dataset | None]:
    """C-STORE each data set over one association; the response of each (None: no association)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 10
    for dataset in datasets:
        ae.add_requested_context(dataset.SOPClassUID, [dataset.file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title="RADEDGE", tls_args=tls_args)
    if not assoc.is_established:
        return [None] * len(datasets)
    try:
        return [assoc.send_c_store(dataset) for dataset in datasets]
    finally:
        assoc.release()


def _copy(path: Path) -> Dataset:
    dataset = dcmread(path)
    dataset.SOPInstanceUID = generate_uid()
    return dataset


def test_an_image_is_on_disk_and_in_the_journal_when_the_sender_hears_success(receiving):
    dataset = _copy(JPEG_2000)
    [response] = _send(receiving.receiver.port, dataset)
    assert response.Status == 0x0000
    [instance] = receiving.journal.all_instances()
    assert (instance.state, instance.via, instance.caller, instance.modality) == ("received", "c-store", "MODALITY",
                                                                                  "DX")
    stored = dcmread(receiving.state.inbox / instance.file)
    # Stored as sent: same instance, same (compressed) transfer syntax, same pixel bytes.
    assert stored.SOPInstanceUID == dataset.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
    assert stored.PixelData == dataset.PixelData
    assert receiving.arrived == [instance.key]


def test_the_same_instance_sent_again_is_acknowledged_and_kept_once(receiving):
    dataset = _copy(UNCOMPRESSED)
    assert [r.Status for r in _send(receiving.receiver.port, dataset, dataset)] == [0, 0]
    assert _send(receiving.receiver.port, dataset)[0].Status == 0
    [instance] = receiving.journal.all_instances()
    assert instance.duplicates == 2
    assert len(list(receiving.state.inbox.iterdir())) == 1


def test_a_report_is_refused_as_an_unsupported_sop_class(receiving):
    report = Dataset()
    report.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    report.SOPInstanceUID = generate_uid()
    report.Modality = "SR"
    report.file_meta = Dataset()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    [response] = _send(receiving.receiver.port, report)
    assert response.Status == 0x0122
    assert "Comprehensive SR" in response.ErrorComment
    assert receiving.journal.all_instances() == []


def test_an_image_without_pixel_data_does_not_match_its_sop_class(receiving):
    dataset = _copy(UNCOMPRESSED)
    del dataset.PixelData
    [response] = _send(receiving.receiver.port, dataset)
    assert response.Status == 0xA900
    [instance] = receiving.journal.all_instances()
    assert instance.state == REFUSED and "Pixel Data" in instance.reason


def test_pixel_data_shorter_than_the_header_says_cannot_be_understood(receiving):
    dataset = _copy(UNCOMPRESSED)
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 2]
    [response] = _send(receiving.receiver.port, dataset)
    assert 0xC000 <= response.Status <= 0xCFFF
    assert response.ErrorComment
    assert receiving.journal.all_instances()[0].state == REFUSED
    assert list(receiving.state.inbox.iterdir()) == []
    # The receiver goes on taking images.
    assert _send(receiving.receiver.port, _copy(UNCOMPRESSED))[0].Status == 0


def test_a_full_queue_answers_out_of_resources_until_there_is_room(tmp_path):
    receiving = Receiving(tmp_path, max_queue=2)
    try:
        statuses = [r.Status for r in _send(receiving.receiver.port, *(_copy(UNCOMPRESSED) for _ in range(3)))]
        assert statuses == [0, 0, 0xA700]
        receiving.journal.claim_next()
        receiving.journal.finish(1, state="not analysed", reason="test", summary={}, outbox=[], audit={})
        assert _send(receiving.receiver.port, _copy(UNCOMPRESSED))[0].Status == 0
    finally:
        receiving.close()


def test_a_caller_outside_the_allowed_titles_is_rejected_at_association(tmp_path):
    receiving = Receiving(tmp_path, allowed=("DR_ROOM_1",))
    try:
        assert _send(receiving.receiver.port, _copy(UNCOMPRESSED), calling="INTRUDER") == [None]
        assert _send(receiving.receiver.port, _copy(UNCOMPRESSED), calling="DR_ROOM_1")[0].Status == 0
        assert len(receiving.journal.all_instances()) == 1
    finally:
        receiving.close()


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_with_client_certificates_admits_only_a_certified_caller(tmp_path):
    server_cert, server_key = _certificate(tmp_path, "radedge")
    client_cert, client_key = _certificate(tmp_path, "modality")
    receiving = Receiving(tmp_path, tls=TlsConfig(server_cert, server_key, ca_certificates=client_cert))
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server_cert))
        context.load_cert_chain(client_cert, client_key)
        [response] = _send(receiving.receiver.port, _copy(UNCOMPRESSED), tls_args=(context, "localhost"))
        assert response.Status == 0
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server_cert))
        assert _send(receiving.receiver.port, _copy(UNCOMPRESSED), tls_args=(anonymous, "localhost")) == [None]
        assert _send(receiving.receiver.port, _copy(UNCOMPRESSED)) == [None]
        assert len(receiving.journal.all_instances()) == 1
    finally:
        receiving.close()


def test_htj2k_is_received_as_sent(receiving):
    dataset = _copy(ROOT / "tests" / "data" / "transfer_syntaxes" / "htj2k_lossless_mono2.dcm")
    [response] = _send(receiving.receiver.port, dataset)
    assert response.Status == 0x0000
    [instance] = receiving.journal.all_instances()
    stored = dcmread(receiving.state.inbox / instance.file)
    assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.201"
