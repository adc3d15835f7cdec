"""What every ``radedge`` command shares: where its text goes (``-q`` / ``-v``), the one table
from a radedge error class to the exit status and the advice the command line adds to its
message, and the checks of options every command words alike (``--out``, ``--threads``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from .._files import writable_folder
from .._terminal import ExitStatus
from .._terminal import shown
from .._terminal import terminal_print
from ..errors import (
    BackendError,
    BundleError,
    BundleIntegrityError,
    BundleSignatureError,
    InputError,
    InvalidArgumentError,
    MemoryBudgetExceededError,
    MissingDependencyError,
    OutOfScopeError,
    RadedgeError,
    ServeConfigError,
    TimeBudgetExceededError,
    UnsupportedTransferSyntaxError,
)

log = logging.getLogger("radedge.cli")


def _missing_packages(error: UnsupportedTransferSyntaxError) -> str | None:
    if error.missing_packages:
        return f"pip install {' '.join(error.missing_packages)}; radedge doctor lists every decoder"
    return "radedge doctor lists the transfer syntaxes this installation decodes"


# What the command line says and how it ends when a radedge error stops a command, by class
# (the most specific class that matches wins). The library's messages say what went wrong;
# the advice names the option or command that fixes it, which only the command line knows.
# An input error inside ``radedge run`` does not stop the run: that input is refused (status
# REFUSED) and the advice is still printed beside it.
FAILURES: dict[type[BaseException], tuple[ExitStatus, str | Callable[[BaseException], str | None] | None]] = {
    BundleSignatureError: (ExitStatus.MODEL, "check --trust: the bundle must be signed by one of the keys given "
                                             "(radedge inspect BUNDLE shows who signed it)"),
    BundleIntegrityError: (ExitStatus.MODEL, "check --model: the bundle changed after it was sealed; copy it "
                                             "again from where it was exported"),
    BundleError: (ExitStatus.MODEL, "check --model: name a bundle folder or .radedge file (radedge models lists "
                                    "the bundled ones, radedge inspect BUNDLE verifies one)"),
    BackendError: (ExitStatus.MODEL, "check --model and --precision (radedge inspect BUNDLE lists the precisions "
                                     "a bundle carries)"),
    # The message says what to pip install (ONNX Runtime's names its two extras).
    MissingDependencyError: (ExitStatus.DEPENDENCY, None),
    ServeConfigError: (ExitStatus.USAGE, "check --config (examples/serve.toml shows every setting)"),
    InvalidArgumentError: (ExitStatus.USAGE, None),
    UnsupportedTransferSyntaxError: (ExitStatus.REFUSED, _missing_packages),
    TimeBudgetExceededError: (ExitStatus.REFUSED, "a sound file that decodes slowly needs a larger --time-budget"),
    MemoryBudgetExceededError: (ExitStatus.REFUSED, None),
    OutOfScopeError: (ExitStatus.REFUSED, "--no-scope-check runs every model whatever the image's scope"),
    InputError: (ExitStatus.REFUSED, None),
    # Any other radedge error that stops a command (a native op failing, say) is a fault.
    RadedgeError: (ExitStatus.INTERNAL, None),
}


def _failure(error: BaseException) -> tuple[ExitStatus, str | None]:
    for cls in type(error).__mro__:
        if cls in FAILURES:
            status, advice = FAILURES[cls]
            return status, advice(error) if callable(advice) else advice
    return ExitStatus.INTERNAL, None


def exit_status(error: BaseException) -> ExitStatus:
    """The exit status a command ends with when ``error`` stops it."""
    return _failure(error)[0]


def advice(error: BaseException) -> str | None:
    """What the command line adds to ``error``'s message: the option or command that fixes it."""
    return _failure(error)[1]


def error_record(error: BaseException) -> dict:
    """``error`` as ``radedge run --jsonl`` and ``doctor --json`` carry it: its stable ``code``
    and structured ``fields`` (``RadedgeError.to_dict``; None and {} for an error from outside
    radedge, such as an OSError), its class name, message, and the command line's advice."""
    if isinstance(error, RadedgeError):
        document = error.to_dict()
        return {"code": document["code"], "class": document["error"], "message": document["message"],
                "fields": document["fields"], "advice": advice(error)}
    return {"code": None, "class": type(error).__name__, "message": str(error), "fields": {}, "advice": advice(error)}


class UsageError(Exception):
    """A mistake in the command line, found before anything is read: one line, exit status USAGE."""


class OutputError(Exception):
    """An output folder named on the command line cannot be written: one line, exit status OUTPUT."""


class Console:
    """Where a command's text goes. ``quiet``: results and errors only; ``verbose``: each step
    logged to stderr as well (never a patient's data: steps name inputs by their label).
    ``results_to_stderr``: stdout carries a machine-readable document, so every line of text
    goes to stderr."""

    def __init__(self, args: argparse.Namespace, *, results_to_stderr: bool = False):
        self.quiet = getattr(args, "quiet", False)
        self.verbose = getattr(args, "verbose", False)
        self.results_to_stderr = results_to_stderr

    def info(self, text: str) -> None:
        """Progress and context (the models loaded, the summary): not shown with ``-q``."""
        if not self.quiet:
            terminal_print(text, file=sys.stderr if self.results_to_stderr else sys.stdout)

    def result(self, text: str) -> None:
        """A result line: shown with ``-q`` too."""
        terminal_print(text, file=sys.stderr if self.results_to_stderr else sys.stdout)

    @staticmethod
    def error(text: str) -> None:
        terminal_print(text, file=sys.stderr)

    def fail(self, error: BaseException, context: str = "") -> ExitStatus:
        """Say in one line on stderr why the command stops, with the advice for its class; its status."""
        status, hint = _failure(error)
        message = str(error) if isinstance(error, (RadedgeError, UsageError, OutputError)) else _os_message(error)
        self.error(f"radedge: {context}{message}" + (f"; {hint}" if hint else ""))
        return status


def _os_message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


def configure_logging(args: argparse.Namespace) -> Callable[[], None]:
    """radedge's warnings on stderr, as ``radedge: ...`` lines; ``-v``: every step (DEBUG);
    ``-q``: errors only, for the command's duration; returns what puts logging back as it was
    (``main`` may be called in a process that has its own logging). The library itself only
    adds a NullHandler: an application decides where its logs go, and the command line is that
    application. The DICOM libraries stay at WARNING whatever is asked: their DEBUG lines can
    quote a header."""
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    logger = logging.getLogger("radedge")
    handler = _StderrHandler()
    handler.setFormatter(_EscapedFormatter("radedge: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    # Not on to the root logger too: an application's own handler there would print it twice.
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    for name in ("pydicom", "highdicom", "pynetdicom"):
        logging.getLogger(name).setLevel(logging.WARNING)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    return restore


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (it is replaced under test)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _EscapedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))


def output_folder(given: str, option: str = "--out") -> Path:
    """The ``option`` folder, created if missing and proven writable, or an ``OutputError`` saying why not."""
    try:
        return writable_folder(given)
    except OSError as exc:
        why = exc.strerror or str(exc)
    folder = Path(given)
    if folder.is_dir():
        raise OutputError(f"{option} {given} is a folder radedge cannot write in ({why}); "
                          f"make it writable for this user or name another folder")
    if folder.exists():
        raise OutputError(f"{option} {given} is a file, not a folder; name a folder for the results "
                          f"(radedge creates it when missing)")
    raise OutputError(f"{option} {given} does not exist and cannot be created ({why}); "
                      f"create it first or name a folder radedge can create")


def check_threads(threads: int) -> None:
    if threads < 0:
        raise UsageError(f"--threads {threads} is negative; give a thread count, or 0 for all cores")


def add_common_options(command: argparse.ArgumentParser) -> None:
    """``-q`` and ``-v``, on every command."""
    loudness = command.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="also log each step on stderr (never a patient's data)")


def add_trust_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--trust", action="append", default=None, metavar="KEY.pub",
        help="load only bundles signed by this public key (repeatable: any of them)",
    )
