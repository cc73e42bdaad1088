"""The ``flowlab`` command: run the lab headless, make the student notebook, grade submissions.

    flowlab train [--flow maf] [--layers 3] [--hidden-units 128,128] [--bins 16] [--epochs 80] ... [--json]
    flowlab train --data digits [--image-flow multiscale] [--dequantization variational] ... [--json]
    flowlab compare [--seeds 0 1 2 3 4] [--epochs 80] [--out DIR] [--json]
    flowlab notebooks DIR [--force]
    flowlab student [--solution NB] [--out NB]
    flowlab grade SUBMISSIONS... [--out DIR] [--timeout SECONDS] [--workers N] [--force]
    flowlab check NOTEBOOK [--timeout SECONDS]
    flowlab gradescope [--wheel WHEEL] [--out ZIP] [--visibility visible]

``check`` and ``grade`` compare against the student notebook that ships inside the package
(``--reference`` overrides it), so they work from any folder once flowlab is installed. Each
sub-command lives in :mod:`flowlab.cli.lab` (train, compare, notebooks) or :mod:`flowlab.cli.grading` (the
rest), which registers its parser and the function that runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from flowlab.cli import grading as cli_grading
from flowlab.cli import lab as cli_lab
from flowlab.cli._common import LazyParser, Parser
from flowlab.cli.grading import SOLUTION, STUDENT

__all__ = ["main", "build_parser", "SOLUTION", "STUDENT"]


def build_parser() -> Parser:
    """The ``flowlab`` argument parser and its sub-commands (each with its ``handler``).

    Building it imports nothing heavy: a sub-command's options are added when it is parsed.
    """
    parser = Parser(prog="flowlab", description="The normalizing-flows lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=LazyParser)
    cli_lab.add_commands(commands)
    cli_grading.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowlab`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
