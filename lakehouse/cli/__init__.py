"""The ``lakehouse`` command line. ``lakehouse --help`` lists the subcommands: the operator's
(``lakehouse.cli.ops``) and the developer's (``lakehouse.tools.cli``).

Foreseeable problems (bad config, unreachable lake or source) end with one ``error:`` line and
exit code 2; a ``-v`` flag adds debug logging.
"""

from __future__ import annotations

import argparse
import sys

from lakehouse import logs
from lakehouse.errors import LakehouseError


def build_parser() -> argparse.ArgumentParser:
    from lakehouse.cli import ops
    from lakehouse.tools import cli as dev

    p = argparse.ArgumentParser(prog="lakehouse", description="Churn Lakehouse pipeline commands")
    p.add_argument("--env", default="local", help="configuration overlay under conf/ (default: local)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ops.add_commands(sub)
    dev.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.verbose)
    try:
        return args.func(args)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
