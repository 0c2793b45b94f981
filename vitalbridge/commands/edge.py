"""`vitalbridge edge ...`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the `edge` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("edge", help="edge commands")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
