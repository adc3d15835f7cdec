"""What radedge prints to a terminal: every line escaped, so text from a file (a name, a header
value quoted in a message) cannot act on the terminal or pass for other text; and the exit
status each command ends with, one meaning per status."""

from __future__ import annotations

import enum
import json


def shown(text: str) -> str:
    """``text`` with every character a terminal would act on or hide written as its escape
    (``\\x1b``, ``\\u202e``): C0 and C1 controls, DEL, bidirectional overrides and other
    format characters, line separators, spaces other than the ASCII one, lone surrogates
    (the undecodable bytes of a file name).
    The test is ``str.isprintable``, the one ``repr`` escapes by. File names and messages
    that quote header text come from whoever wrote the file, not from the person at the
    console, and could otherwise clear the screen or make one name read as another."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def terminal_print(text: str, file=None, flush: bool = False) -> None:
    """Every line radedge prints goes through here, escaped by ``shown``."""
    print(shown(text), file=file, flush=flush)


def print_json(document) -> None:
    # json.dumps escapes every control and non-ASCII character except DEL; escaped the JSON
    # way, DEL leaves valid JSON and shown nothing to change on any line.
    for line in json.dumps(document, indent=2).replace("\x7f", "\\u007f").split("\n"):
        terminal_print(line)


class ExitStatus(enum.IntEnum):
    """How a ``radedge`` command ends. Each status has one meaning whatever the command
    (``EXIT_MEANINGS``); a command that meets several ends with the highest of them, so a run
    whose results could not all be written ends with ``OUTPUT`` even if it also refused an input."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    MODEL = 3
    DEPENDENCY = 4
    OUTPUT = 5
    SERVICE = 6
    EXPORT = 7
    INTERNAL = 70
    INTERRUPTED = 130


EXIT_MEANINGS = {
    ExitStatus.OK: "done: every input has its result (flags, no flags, or \"not analysed\" with the reason) "
                   "and every output asked for is written; doctor: everything asked for is usable",
    ExitStatus.REFUSED: "done in part: some inputs were refused (a typed error: unreadable, corrupt, unsupported, "
                        "over their time or memory budget) and have no result; the others do. bench: an input "
                        "could not be measured; export: the gate refused a precision, the others are written",
    ExitStatus.USAGE: "the command line, or the configuration file it names, is wrong: argparse's errors, a value "
                      "out of range, paths that hold no input; nothing was done",
    ExitStatus.MODEL: "a model bundle, or a key for one, cannot be used: missing, malformed, changed after export, "
                      "unsigned or signed by a key not trusted, without the precision asked, refused by the backend",
    ExitStatus.DEPENDENCY: "this installation or machine lacks what was asked: an optional package, a decoder "
                           "for a transfer syntax, a CUDA build or device",
    ExitStatus.OUTPUT: "an output cannot be written: --out names a file or a folder that cannot be written, a "
                       "result could not be saved (disk full), a key or repository would be overwritten",
    ExitStatus.SERVICE: "radedge serve cannot serve: another radedge serve holds the state folder, a port is "
                        "taken, --check found a problem, or a working part of the service stopped",
    ExitStatus.EXPORT: "radedge export failed: the checkpoint cannot be loaded or exported as given",
    ExitStatus.INTERNAL: "a fault in radedge itself (a bug): the traceback is printed; please report it",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C, SIGINT)",
}
