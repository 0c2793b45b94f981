"""`vitalbridge cloud export-hl7`: stored observations of one patient, streamed to an MLLP receiver as ORU^R01."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from typing import Any

__all__ = ["add_hl7_export_parser", "parse_instant"]


def add_hl7_export_parser(commands: Any) -> None:
    """Register ``cloud export-hl7`` under the ``cloud`` command group."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "export-hl7", help="send a patient's stored observations to an HL7 v2 receiver (ORU^R01 over MLLP)",
        description="Read a patient's numeric observations in [--start, --end] from InfluxDB and send them to "
        "an MLLP receiver as IHE PCD-01 ORU^R01 messages, each checked against its ACK. Prints how many were "
        "sent and acknowledged. InfluxDB comes from --influx-url/--influx-db or VB_INFLUX_URL, VB_INFLUX_DB, "
        "VB_INFLUX_TOKEN.")
    parser.add_argument("--patient", required=True, help="the patient's (pseudonymous) id")
    parser.add_argument("--start", required=True, type=parse_instant, metavar="ISO",
                        help="first instant, ISO 8601 (e.g. 2026-11-25 or 2026-11-25T08:00:00Z; UTC unless it says)")
    parser.add_argument("--end", required=True, type=parse_instant, metavar="ISO", help="last instant, ISO 8601")
    parser.add_argument("--to", required=True, dest="to", metavar="URL", help="the receiver, mllp://host:port")
    parser.add_argument("--influx-url", help="InfluxDB HTTP API (VB_INFLUX_URL)")
    parser.add_argument("--influx-db", help="InfluxDB database (VB_INFLUX_DB)")
    parser.add_argument("--facility", default="", help="MSH-4, the sending facility")
    parser.add_argument("--ack-timeout", type=float, default=30.0, metavar="S", help="seconds to wait for each ACK")
    parser.add_argument("--chunk", type=int, default=500, metavar="N", help="observations per message (1..10000)")
    parser.set_defaults(func=_run)


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time as an aware datetime (UTC when it names no zone)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time "
                                         "(e.g. 2026-11-25 or 2026-11-25T08:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _run(args: argparse.Namespace) -> int:
    from cloud.hl7 import MessageHeader, MllpClient, export_observations, parse_mllp_url
    from cloud.service import CloudConfig, ConfigError
    from cloud.timeseries import InfluxError

    name = "vitalbridge cloud export-hl7"
    try:
        config = CloudConfig.from_env(influx_url=args.influx_url, influx_db=args.influx_db)
        endpoint = parse_mllp_url(args.to)
    except (ConfigError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if args.end < args.start:
        print(f"{name}: --end ({args.end.isoformat()}) is before --start ({args.start.isoformat()})", file=sys.stderr)
        return 2
    if not 1 <= args.chunk <= 10_000 or args.ack_timeout <= 0:
        print(f"{name}: --chunk must be 1..10000 and --ack-timeout above 0", file=sys.stderr)
        return 2

    def ns(at: dt.datetime) -> int:
        return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000

    async def main() -> int:
        influx = config.influx_reader()
        client = MllpClient(endpoint, ack_timeout_s=args.ack_timeout)
        try:
            result = await export_observations(influx, client, args.patient, ns(args.start), ns(args.end),
                                               created_ns=time.time_ns, chunk=args.chunk,
                                               header=MessageHeader(sending_facility=args.facility))
        finally:
            await client.aclose()
            await influx.aclose()
        print(f"{args.patient}: {result.observations} observations in {result.messages} ORU^R01 messages sent to "
              f"{endpoint}; acknowledged {result.acknowledged} messages ({result.acknowledged_observations} "
              f"observations)")
        if result.aborted:
            print(f"{name}: stopped: {result.aborted}", file=sys.stderr)
        for reason in result.refused[:20]:
            print(f"  not acknowledged: {reason}", file=sys.stderr)
        if len(result.refused) > 20:
            print(f"  ... and {len(result.refused) - 20} more", file=sys.stderr)
        return 0 if not result.refused and not result.aborted else 1

    try:
        return asyncio.run(main())
    except InfluxError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
