"""`vitalbridge sim ...`: list, plot and export simulated patient scenarios; run them; generate load."""

from __future__ import annotations

import argparse
import dataclasses
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


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from device_profiles.userfile import UserFileError
    from vitalbridge.home import SimRunError, SimRunOptions, run_scenario

    try:
        options = SimRunOptions(scenario=args.scenario, mode=args.mode, speed=args.speed, duration_s=args.duration,
                                mqtt_url=args.mqtt_url, gateway=args.gateway, seed=args.seed,
                                waveforms=args.waveforms,
                                run_dir=Path(args.run_dir) if args.run_dir else None)
        if options.waveforms and options.mode == "home":
            print("note: --waveforms applies to --mode direct; the virtual home sends what its devices send")
        result = asyncio.run(run_scenario(options, announce=lambda line: print(line, flush=True)))
    except (SimRunError, UserFileError) as error:  # UserFileError: a scenario or gateway config mistake
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UserFileError) else 1
    except KeyboardInterrupt:
        return 130
    print(f"published {result.published_values} values in {result.batches} batches, "
          f"{result.scenario_s:g} s of scenario" + (f"; errors: {result.errors}" if result.errors else ""))
    print(result.to_json())
    return 1 if result.errors or result.published_values == 0 else 0


def _cmd_load(args: argparse.Namespace) -> int:
    import asyncio
    import datetime as dt

    from simulators.load import LoadOptions, run_load
    from vitals.endpoints import parse_mqtt_url

    prefix = args.gateway_prefix or f"load-{dt.datetime.now(dt.UTC).strftime('%Y%m%d%H%M%S')}"
    try:
        if args.mqtt_url is not None:
            parse_mqtt_url(args.mqtt_url)
        options = LoadOptions(mqtt_url=args.mqtt_url or "mqtt://127.0.0.1", gateways=args.gateways,
                              patients_per_gateway=args.patients_per_gateway, rate_hz=args.rate,
                              duration_s=args.duration, batch_interval_s=args.batch_interval, qos=args.qos,
                              gateway_prefix=prefix, seed=args.seed, track_acks=args.acks,
                              ack_wait_s=args.ack_wait)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stack = None
    if args.mqtt_url is None:
        from vitalbridge.stack import LocalStack, StackError

        stack = LocalStack(mqtt=True, influx=False)
        try:
            stack.start()
        except StackError as error:
            print(f"error: cannot start a local Mosquitto: {error}", file=sys.stderr)
            return 1
        options = dataclasses.replace(options, mqtt_url=stack.mqtt_url)
        print(f"started Mosquitto at {stack.mqtt_url}", flush=True)
    try:
        report = asyncio.run(run_load(options))
    except KeyboardInterrupt:
        return 130
    finally:
        if stack is not None:
            stack.stop()
    print(report.table())
    print(report.to_json())
    return 0 if report.ok else 1


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_streaming_commands(commands: Any) -> None:
    """`sim run` (scenario -> virtual home or straight to MQTT) and `sim load` (load generator).

    They drive :meth:`simulators.scenarios.ScenarioRun.advance` chunk by chunk; see docs/simulators.md.
    """
    run = commands.add_parser(
        "run", help="drive a scenario into MQTT: through a virtual home (real edge agent) or straight",
        description="Scenario time starts FOR*SPEED seconds before now and runs SPEED times faster than the "
                    "clock, so no reading lies in the future. Ends with a JSON line of counts.")
    run.add_argument("scenario", metavar="SCENARIO", help="library name or path to a scenario YAML file")
    run.add_argument("--mode", choices=("home", "direct"), default="home",
                     help="home: virtual devices in a real edge agent (default); direct: batches straight to MQTT")
    run.add_argument("--speed", type=_positive_float, default=1.0,
                     help="scenario seconds per wall-clock second (default 1)")
    run.add_argument("--for", dest="duration", type=_positive_float, default=None, metavar="S",
                     help="wall-clock seconds to run (default: the scenario's length / SPEED)")
    run.add_argument("--mqtt-url", default=None, metavar="URL",
                     help="broker, mqtt[s]://[user:pass@]host[:port] (default: start a local Mosquitto)")
    run.add_argument("--gateway", default=None, metavar="ID", help="gateway id (default: sim-<time>-<pid>)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--waveforms", action="store_true", help="direct mode: publish ECG/PPG too")
    run.add_argument("--run-dir", default=None, metavar="DIR",
                     help="directory for the spool and a local broker (default: a temporary one)")
    run.set_defaults(func=_cmd_run)

    load = commands.add_parser(
        "load", help="many virtual gateways publishing at once; reports the rate achieved and every error",
        description="Each patient produces RATE readings/s (an SpO2 and a pulse-rate value each); every "
                    "BATCH_INTERVAL each gateway publishes one batch per patient. Prints a table and a JSON "
                    "line; exits 1 if anything failed.")
    load.add_argument("--gateways", type=_positive_int, required=True, metavar="N", help="virtual gateways")
    load.add_argument("--patients-per-gateway", type=_positive_int, required=True, metavar="M",
                      help="patients per gateway")
    load.add_argument("--rate", type=_positive_float, required=True, metavar="HZ",
                      help="readings per second per patient (each reading: spo2 + pulse_rate)")
    load.add_argument("--for", dest="duration", type=_positive_float, required=True, metavar="S",
                      help="seconds to run")
    load.add_argument("--mqtt-url", default=None, metavar="URL",
                      help="broker, mqtt[s]://[user:pass@]host[:port] (default: start a local Mosquitto)")
    load.add_argument("--batch-interval", type=_positive_float, default=1.0, metavar="S",
                      help="seconds between a gateway's batches (default 1)")
    load.add_argument("--qos", type=int, choices=(0, 1), default=1, help="MQTT QoS (default 1)")
    load.add_argument("--gateway-prefix", default=None, metavar="ID",
                      help="gateway ids are PREFIX-1..PREFIX-N (default: load-<time>)")
    load.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    load.add_argument("--acks", action="store_true",
                      help="read the cloud's acknowledgements: report what it stored and the publish-to-stored latency")
    load.add_argument("--ack-wait", type=_positive_float, default=30.0, metavar="S",
                      help="with --acks, how long to wait at the end for the last acknowledgements (default 30)")
    load.set_defaults(func=_cmd_load)


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
