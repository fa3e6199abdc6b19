"""The ``nsl`` command. Subcommands live in ``nsl.commands`` (one module per stage) and ``nsl.bench`` and import heavy
dependencies only when they run, so ``nsl --help`` and the edge commands work without TensorFlow."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from nsl import __version__
from nsl.errors import NslError, disk_full_message, is_disk_full
from nsl.grammar import Parser, install

COMMAND_MODULES = ("nsl.commands.data", "nsl.commands.train", "nsl.commands.export", "nsl.commands.edge", "nsl.bench",
                   "nsl.commands.cfg")
log = logging.getLogger("nsl")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nsl", description="Nepali Sign Language: train, export (int8 TFLite/ONNX) and run on the edge.",
        epilog="Typical flow: nsl data synth data/synth -> nsl train data=data/synth -> "
               "nsl export runs/exp int8=true -> nsl app model=runs/exp/bundle. Every verb takes key=value beside "
               "its flags; nsl cfg VERB lists the keys.")
    parser.add_argument("--version", action="version", version=f"nsl-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(commands)
    install(parser)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except NslError as err:
        if args.verbose:
            log.exception("error")
        print(f"nsl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nsl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a full disk is the user's to fix, whichever library hit it; anything else is a bug
        if not is_disk_full(err):
            raise
        if args.verbose:
            log.exception("error")
        print(f"nsl {args.command}: error: {disk_full_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
