"""`vitalbridge sim ...`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the `sim` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("sim", help="sim commands")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
