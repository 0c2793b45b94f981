"""`vitalbridge profiles ...`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the `profiles` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("profiles", help="profiles commands")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
