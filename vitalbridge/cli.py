"""The ``vitalbridge`` command: one parser, a subcommand group per module in ``vitalbridge.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

# One module per subcommand group; each defines ``add_parser(subparsers)`` and sets ``func``.
_GROUPS = ("demo", "edge", "cloud", "sim", "profiles", "rules")


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser (used by ``main`` and by the CLI tests)."""
    parser = argparse.ArgumentParser(
        prog="vitalbridge",
        description="VitalBridge remote patient monitoring: gateway, cloud, simulators and tools.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name in _GROUPS:
        module = importlib.import_module(f"vitalbridge.commands.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is debug detail
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
