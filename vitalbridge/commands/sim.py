"""`vitalbridge sim ...`: list, plot and export simulated patient scenarios."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _scenario(name: str) -> Any:
    from simulators.scenarios import ScenarioError, load_scenario

    try:
        return load_scenario(name)
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def _cmd_list(args: argparse.Namespace) -> int:
    from simulators.scenarios import list_scenarios, load_scenario

    names = list_scenarios()
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:<{width}}  {load_scenario(name).description}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario)
    if scenario is None:
        return 2
    try:
        from simulators._plot import plot_scenario
    except ImportError:
        print("error: plotting needs matplotlib: pip install 'vitalbridge[plot]'", file=sys.stderr)
        return 2
    out = plot_scenario(scenario, Path(args.out), hours=args.hours, seed=args.seed)
    print(f"wrote {out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from simulators._export import export_scenario

    scenario = _scenario(args.scenario)
    if scenario is None:
        return 2
    files = export_scenario(scenario, Path(args.out), fmt=args.format, hours=args.hours,
                            waveform_minutes=args.waveform_minutes, seed=args.seed)
    for path in files:
        print(f"wrote {path}")
    return 0


def _add_streaming_commands(commands: Any) -> None:
    """`sim run` (scenario -> virtual devices / MQTT) and `sim load` (load generator) register here.

    They drive :meth:`simulators.scenarios.ScenarioRun.advance` chunk by chunk; see docs/simulators.md.
    """


def add_parser(subparsers: Any) -> None:
    """Register the `sim` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="simulated patients: list, plot and export scenarios"
    )
    def _help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_help)
    commands = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="list the library scenarios with a one-line description")
    listing.set_defaults(func=_cmd_list)

    plot = commands.add_parser("plot", help="draw a scenario's signals and ground truth to a PNG")
    plot.add_argument("scenario", metavar="SCENARIO", help="library name or path to a scenario YAML file")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    plot.add_argument("--hours", type=float, default=None, help="hours to show (default: the whole scenario)")
    plot.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    plot.set_defaults(func=_cmd_plot)

    export = commands.add_parser("export", help="write a scenario's signals and ground truth to files")
    export.add_argument("scenario", metavar="SCENARIO", help="library name or path to a scenario YAML file")
    export.add_argument("--format", choices=("csv", "wfdb"), default="csv", help="output format (default csv)")
    export.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    export.add_argument("--hours", type=float, default=None,
                        help="hours of numerics (default: the whole scenario)")
    export.add_argument("--waveform-minutes", type=float, default=5.0,
                        help="minutes of ECG/PPG from the start (default 5)")
    export.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    export.set_defaults(func=_cmd_export)

    # sim run / sim load: wired to MQTT and the edge agent by _add_streaming_commands.
    _add_streaming_commands(commands)
