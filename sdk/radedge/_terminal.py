"""What radedge prints to a terminal: every line escaped, so text from a file (a name, a header
value quoted in a message) cannot act on the terminal or pass for other text."""

from __future__ import annotations

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
