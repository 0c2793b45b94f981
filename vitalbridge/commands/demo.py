"""`vitalbridge demo`: the whole system on its embedded default."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``demo`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run broker, InfluxDB, cloud and a gateway with three simulated patients",
        description="Starts Mosquitto and influxd on free loopback ports (unless --mqtt-url / --influx-url "
        "name running ones), the cloud and a gateway with virtual pulse oximeters for three patients, one of "
        "whom slides into hypoxia. The servers it starts run the secure profile (TLS, accounts, ACLs) unless "
        "--insecure. With --for, ends by printing {\"published\", \"stored\", \"alerts\"} as JSON.",
    )
    parser.add_argument("--for", dest="duration_s", type=float, default=None, metavar="SECONDS",
                        help="run this long, then stop cleanly (default: until Ctrl-C)")
    parser.add_argument("--mqtt-url", help="use this broker instead of starting Mosquitto")
    parser.add_argument("--influx-url", help="use this InfluxDB instead of starting influxd")
    parser.add_argument("--port", dest="http_port", type=int, help="API port (default: a free one)")
    parser.add_argument("--speed", type=float, default=240.0,
                        help="how much faster than real time the recent past is replayed (default 240)")
    parser.add_argument("--history", dest="history_s", type=float, default=3 * 3600.0, metavar="SECONDS",
                        help="how much recent past to replay before going live (default 10800)")
    parser.add_argument("--run-dir", type=Path, help="keep configs, logs and data here (default: a temp dir)")
    parser.add_argument("--insecure", dest="secure", action="store_false",
                        help="the open profile: anonymous broker without TLS, InfluxDB without users (by default "
                        "the demo runs the secure profile: a new CA, TLS only, an account per client, ACLs)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vitalbridge.demo import DemoOptions, run_demo
    from vitalbridge.stack import StackError

    if args.duration_s is not None and args.duration_s <= 0:
        print("vitalbridge demo: --for must be a positive number of seconds", file=sys.stderr)
        return 2
    options = DemoOptions(duration_s=args.duration_s, mqtt_url=args.mqtt_url, influx_url=args.influx_url,
                          http_port=args.http_port, history_s=args.history_s, speed=args.speed,
                          run_dir=args.run_dir, secure=args.secure)
    try:
        result = asyncio.run(run_demo(options, announce=lambda line: print(line, flush=True)))
    except StackError as exc:
        print(f"vitalbridge demo: {exc}", file=sys.stderr)
        return 1
    print(result.to_json(), flush=True)
    return 0 if result.stored == result.published else 1
