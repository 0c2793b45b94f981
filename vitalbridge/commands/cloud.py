"""`vitalbridge cloud ...`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the `cloud` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("cloud", help="cloud commands")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
