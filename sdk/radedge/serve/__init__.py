"""``radedge serve``: the console service.

A DICOM C-STORE receiver and a watched folder feed a durable journal; each image is decoded
in a worker process with a time budget and analysed by every model whose scope fits; the
flags appear on a live page for the technologist; the DICOM results (SEG, SR, GSPS, KOS)
go to the PACS from a persistent outbox; an audit line per analysis records what ran, never
who the patient is. ``kill -9`` at any moment loses nothing and analyses nothing twice.

    radedge serve --config examples/serve.toml --state /var/lib/radedge

Layout: ``config`` (serve.toml), ``state`` (the state folder), ``journal`` (SQLite),
``intake`` (how an image is accepted), ``receiver`` (C-STORE), ``folder`` (drop folder),
``analysis`` (decode and models), ``forward`` (outbox -> PACS), ``audit``, ``events`` and
``page`` (the live page and status endpoint), ``service`` (all of it, in order).
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from ..errors import RadedgeError, ServeConfigError
from .config import ServeConfig, load_config
from .service import Service

__all__ = ["ServeConfig", "ServeConfigError", "Service", "check", "load_config", "log_to_stderr"]


def log_to_stderr(*, verbose: bool = False) -> None:
    """The service's log on stderr (journald under systemd), one line per event. The DICOM
    libraries log at WARNING only: pynetdicom's INFO and DEBUG lines can quote a data set."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("pynetdicom", "highdicom", "pydicom"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not verbose:
        # It logs each failed connection at ERROR; the forwarder says once that the PACS is down.
        logging.getLogger("pynetdicom.transport").setLevel(logging.CRITICAL)


def check(config: ServeConfig, state: str | Path) -> tuple[list[str], list[str]]:
    """What would stop ``config`` from serving on ``state`` (the problems; none: it can
    serve), and what is worth knowing (the notes), one line each. Loads and verifies the
    models, proves the state folder writable and the ports free, and asks the forward
    destination for a C-ECHO."""
    from .._files import writable_folder
    from ..pipeline import load_models

    problems, notes = [], []
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        return ["pynetdicom is not installed: pip install 'radedge[serve]'"], notes
    try:
        writable_folder(state)
    except OSError as exc:
        problems.append(f"the state folder '{state}' cannot be written: {exc.strerror or exc}")
    models = config.models
    try:
        load_models(models.bundles or None, precision=models.precision,
                    trusted_keys=list(models.trusted_keys) or None, threads=1, warm_up=False)
    except RadedgeError as exc:
        problems.append(f"the models cannot be loaded: {exc}")
    listeners = []
    if config.receiver.enabled:
        listeners.append(("receiver", config.receiver.host, config.receiver.port))
    if config.page.enabled:
        listeners.append(("page", config.page.host, config.page.port))
    for name, host, port in listeners:
        try:
            with socket.create_server((host, port)):
                pass
        except OSError as exc:
            problems.append(f"the {name} cannot listen on {host}:{port}: {exc.strerror or exc} (another program, "
                            f"or a running radedge serve, holds it)")
    if config.forward is not None and not _echo(config):
        # Not a problem: the outbox keeps the results until the destination is back.
        notes.append(f"{config.forward.ae_title} at {config.forward.host}:{config.forward.port} does not answer "
                     f"C-ECHO now; results wait in the outbox until it does")
    return problems, notes


def _echo(config: ServeConfig) -> bool:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    forward = config.forward
    ae = AE(ae_title=forward.calling_ae_title)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 5
    ae.add_requested_context(Verification)
    assoc = ae.associate(forward.host, forward.port, ae_title=forward.ae_title)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return "Status" in status and status.Status == 0
    finally:
        assoc.release()
