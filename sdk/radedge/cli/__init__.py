"""``radedge`` command line: ``run`` images through the models that apply, ``models`` lists them,
``inspect`` a bundle, ``keygen`` and ``sign`` to seal bundles, ``export`` and ``triton``,
``doctor``, ``serve`` the console, ``bench`` the latency. One module per command; what they
share (``-q`` / ``-v``, the exit statuses, the advice per error class) is in ``_common``.
docs/cli.md describes every command, its JSON outputs and the exit statuses."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence

from .. import __version__
from .._terminal import EXIT_MEANINGS, ExitStatus
from .._terminal import shown, terminal_print
from . import bench, bundles, doctor, export, run, serve
from ._common import configure_logging


def exit_status_table() -> str:
    """The exit statuses as ``radedge --help`` ends with them."""
    rows = [textwrap.fill(meaning, 100, initial_indent=f"  {int(status):>3}  ", subsequent_indent=" " * 7)
            for status, meaning in EXIT_MEANINGS.items()]
    return "exit statuses (a command that meets several ends with the highest):\n" + "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="radedge", description="Run X-ray imaging AI models at the console.",
                     epilog=exit_status_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"radedge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run.add_parser(commands)
    bundles.add_parsers(commands)
    export.add_parsers(commands)
    doctor.add_parser(commands)
    serve.add_parser(commands)
    bench.add_parser(commands)
    for command in commands.choices.values():
        if command.epilog is None:
            command.epilog = "exit statuses: see radedge --help"
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its error messages (which quote the arguments given) escaped like every other line."""

    def error(self, message: str):
        super().error(shown(message))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    restore_logging = None if getattr(args, "own_logging", False) else configure_logging(args)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # Whoever read stdout stopped (radedge run --jsonl | head -1): nothing more can be written
        # there, and Python's own flush at exit must not fail on it either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OUTPUT
    except KeyboardInterrupt:
        terminal_print("radedge: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception:
        # Every refusal radedge means is handled above; what reaches here is a fault in radedge.
        for line in traceback.format_exc().splitlines():
            terminal_print(line, file=sys.stderr)
        terminal_print(f"radedge: internal error (a bug in radedge {__version__}); please report it with the traceback "
              f"above", file=sys.stderr)
        return ExitStatus.INTERNAL
    finally:
        if restore_logging is not None:
            restore_logging()


if __name__ == "__main__":
    sys.exit(main())
