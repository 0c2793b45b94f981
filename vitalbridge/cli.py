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

# Which extra brings a third-party package (its top-level module), for the message when one is missing.
_EXTRA_OF = {
    **dict.fromkeys(("scipy", "bleak", "serial_asyncio_fast", "serial", "ruamel", "aiomqtt", "paho"), "edge"),
    **dict.fromkeys(("fastapi", "uvicorn", "sqlalchemy", "alembic", "httpx", "prometheus_client",
                      "hl7"), "cloud"),
    "matplotlib": "sim",
}


def missing_package_message(error: ModuleNotFoundError) -> str:
    """One line for a package this install lacks, naming the extra that brings it."""
    top = (error.name or "").split(".")[0]
    extra = _EXTRA_OF.get(top)
    fix = f"pip install 'vitalbridge[{extra}]'" if extra else "install the missing package"
    return f"this command needs the package {top or error.name!r}, which this install lacks: {fix}"


def _unavailable_group(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                       error: ModuleNotFoundError) -> None:
    """A subcommand group whose module cannot be imported here: it says what to install."""
    message = missing_package_message(error)
    group = subparsers.add_parser(name, help=f"(not installed: {message})", add_help=False)
    group.add_argument("rest", nargs=argparse.REMAINDER)

    def explain(_args: argparse.Namespace) -> int:
        print(f"vitalbridge {name}: {message}", file=sys.stderr)
        return 2

    group.set_defaults(func=explain)


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser (used by ``main`` and by the CLI tests)."""
    parser = argparse.ArgumentParser(
        prog="vitalbridge",
        description="VitalBridge remote patient monitoring: gateway, cloud, simulators and tools.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"vitalbridge.commands.{name}")
        except ModuleNotFoundError as error:  # an install without this part's extra
            if error.name is not None and error.name.split(".")[0] in ("vitalbridge", "edge", "cloud"):
                raise  # our own module is missing: a real bug, not an extra left out
            _unavailable_group(subparsers, name, error)
            continue
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
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] not in _EXTRA_OF:
            raise
        print(f"vitalbridge {args.group}: {missing_package_message(error)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
