"""``radedge serve``: the console service, or with ``--check`` whether it could start."""

from __future__ import annotations

import argparse
import logging

from .._terminal import ExitStatus
from ..errors import RadedgeError
from ._common import Console, add_common_options, exit_status


def add_parser(commands) -> None:
    serve = commands.add_parser(
        "serve", help="the console service: receive images (C-STORE, a folder), flag them live, forward results")
    serve.add_argument("--config", required=True, metavar="SERVE.toml", help="the configuration (see examples/serve.toml)")
    serve.add_argument("--state", default="radedge-state", metavar="DIR",
                       help="where the journal, the received images, the results and the audit log live "
                            "(default: ./radedge-state)")
    serve.add_argument("--check", action="store_true",
                       help="check the configuration, the models, the state folder and the ports, then exit")
    add_common_options(serve)
    # The service logs through the root logger, with times and levels (log_to_stderr).
    serve.set_defaults(func=serve_command, own_logging=True)


def serve_command(args: argparse.Namespace) -> int:
    from ..serve import ServeConfigError, Service, check, load_config, log_to_stderr
    from ..serve.state import StateFolderInUseError

    console = Console(args)
    try:
        config = load_config(args.config)
    except ServeConfigError as exc:
        return console.fail(exc)
    if args.check:
        problems, notes = check(config, args.state)
        for line in config.describe():
            console.info(f"  {line}")
        for note in notes:
            console.info(f"  note: {note}")
        for problem in problems:
            console.result(f"  PROBLEM: {problem}")
        console.result(f"{args.config}: " + ("cannot serve, see above" if problems else "OK"))
        return ExitStatus.SERVICE if problems else ExitStatus.OK
    log_to_stderr(verbose=args.verbose)
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        stopped_on_failure = Service(config, args.state).run()
    except (StateFolderInUseError, OSError, RuntimeError) as exc:
        console.fail(exc, "cannot serve: ")
        return ExitStatus.SERVICE
    except RadedgeError as exc:
        status = exit_status(exc)
        console.fail(exc, "cannot serve: ")
        return status if status != ExitStatus.INTERNAL else ExitStatus.SERVICE
    return ExitStatus.SERVICE if stopped_on_failure else ExitStatus.OK
