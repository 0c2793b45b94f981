"""`vitalbridge cloud run|ingest|api`: the cloud together or as separate processes, by flags or VB_* variables;
`vitalbridge cloud export-fhir`: one patient's data as a FHIR R4 transaction Bundle or NDJSON."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from vitalbridge.commands._cloud_store import open_cloud_store
from vitalbridge.commands._hl7 import add_hl7_export_parser
from vitalbridge.commands._pki import add_pki_parser
from vitalbridge.commands._users import add_user_parser

__all__ = ["add_parser"]

_ROLES = {
    "run": ("ingest from MQTT into InfluxDB, evaluate rules, serve the API (all in one process)", True, True),
    "ingest": ("only the ingest worker (serves /health and /metrics on --port)", False, True),
    "api": ("only the HTTP API (another process runs the ingest)", True, False),
}

_ENVIRONMENT_HELP = (
    "Flags override the environment: VB_MQTT_URL, VB_INFLUX_URL, VB_INFLUX_DB, VB_INFLUX_TOKEN, VB_INFLUX_USERNAME, "
    "VB_INFLUX_PASSWORD, VB_INFLUX_READ_USERNAME, VB_INFLUX_READ_PASSWORD, VB_MQTT_CA_FILE, VB_MQTT_USERNAME, "
    "VB_MQTT_PASSWORD, VB_BROKER_PKI_DIR, VB_DATABASE_URL, "
    "VB_HTTP_HOST, VB_HTTP_PORT, VB_INGEST_CLIENT_ID, VB_INGEST_WORKER_INDEX, VB_INGEST_SHARED_GROUP, "
    "VB_INGEST_SESSION_EXPIRY_S, VB_GATEWAY_SILENT_S, VB_INGEST_MAX_MESSAGES, "
    "VB_INGEST_MAX_WAIT_MS, VB_INGEST_MAX_INFLIGHT, VB_INGEST_MAX_VALUES, VB_INGEST_STALL_S, VB_DEDUP_HORIZON_DAYS, "
    "VB_DEAD_LETTER_DAYS, VB_DEAD_LETTER_PAYLOAD_DAYS, VB_DEAD_LETTER_MAX, VB_REGISTRY (enforce|off), "
    "VB_REGISTRY_CACHE_S, VB_AUTH_SECRET or VB_AUTH_SECRET_FILE, VB_ACCESS_TOKEN_MINUTES, VB_REFRESH_TOKEN_DAYS, "
    "VB_AUDIT_DAYS, VB_TLS_CERT, VB_TLS_KEY, VB_HSTS, VB_CORS_ORIGINS, VB_FORWARDED_ALLOW_IPS, VB_RULES, "
    "VB_HL7_URL (mllp://host:port), VB_HL7_ACK_TIMEOUT_S, VB_HL7_FACILITY, "
    "VB_THRESHOLDS_PUBLISH, VB_THRESHOLDS_EVERY_S."
)


def add_parser(subparsers: Any) -> None:
    """Register the ``cloud`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("cloud", help="run the cloud service")
    commands = parser.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    for name, (help_text, api, ingest) in _ROLES.items():
        command = commands.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}. "
                                      f"{_ENVIRONMENT_HELP}")
        command.add_argument("--mqtt-url", help="broker, e.g. mqtt://127.0.0.1:1883 (VB_MQTT_URL)")
        command.add_argument("--influx-url", help="InfluxDB HTTP API, e.g. http://127.0.0.1:8086 (VB_INFLUX_URL)")
        command.add_argument("--influx-db", help="InfluxDB database (VB_INFLUX_DB)")
        command.add_argument("--database-url", help="SQLAlchemy URL of the relational store (VB_DATABASE_URL)")
        command.add_argument("--host", dest="http_host", help="address HTTP listens on (VB_HTTP_HOST)")
        command.add_argument("--port", dest="http_port", type=int, help="port HTTP listens on (VB_HTTP_PORT)")
        if ingest:
            command.add_argument("--client-id", help="MQTT client id of this ingest; keep it stable across restarts "
                                 "so the broker keeps its session; by default vitalbridge-ingest-HOST[-INDEX] "
                                 "(VB_INGEST_CLIENT_ID)")
            command.add_argument("--rules", dest="rules_file", metavar="FILE",
                                 help="YAML rules file (see `vitalbridge rules list`); default: the built-in "
                                 "rule set (VB_RULES)")
            command.add_argument("--worker-index", type=int, help="this worker's number when several run on one host "
                                 "(VB_INGEST_WORKER_INDEX)")
            command.add_argument("--shared-group", help="shared-subscription group the ingest workers split the "
                                 "topics in, $share/GROUP/...; '' for none (VB_INGEST_SHARED_GROUP, default ingest)")
        if name == "ingest":
            command.add_argument("--workers", type=int, default=1, metavar="N",
                                 help="run N ingest worker processes on this host, each with its own client id "
                                 "and its /health on --port + 1 + its index (default 1: this process)")
        command.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        command.set_defaults(func=_run, api=api, ingest=ingest)
    add_user_parser(commands)
    add_hl7_export_parser(commands)
    add_pki_parser(commands)
    _add_export_parser(commands)


def _add_export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export-fhir", help="export one patient's vitals, devices and alerts as FHIR R4",
        description="Write one patient's data between --start and --end as a FHIR R4 transaction Bundle (one file, "
        "loadable with one POST to a FHIR server's base URL) or as NDJSON (a directory, one TYPE.ndjson file per "
        "resource type). Reads the database and InfluxDB named by the flags or VB_DATABASE_URL, VB_INFLUX_URL, "
        "VB_INFLUX_DB, VB_INFLUX_TOKEN.")
    export.add_argument("--patient", required=True, help="the patient's id")
    export.add_argument("--start", required=True, metavar="ISO",
                        help="from this FHIR date or time (e.g. 2024-05-01 or 2024-05-01T08:00:00Z; UTC if no zone)")
    export.add_argument("--end", required=True, metavar="ISO",
                        help="up to the end of this FHIR date or time (2024-05-07 includes all of that day)")
    export.add_argument("--out", required=True, metavar="PATH", help="the Bundle file, or the NDJSON directory")
    export.add_argument("--format", choices=["bundle", "ndjson"], default="bundle", help="default: bundle")
    export.add_argument("--waveforms", action="store_true", help="include ECG and PPG waveforms (large)")
    export.add_argument("--influx-url", help="InfluxDB HTTP API (VB_INFLUX_URL)")
    export.add_argument("--influx-db", help="InfluxDB database (VB_INFLUX_DB)")
    export.add_argument("--database-url", help="SQLAlchemy URL of the relational store (VB_DATABASE_URL)")
    export.set_defaults(func=_export_fhir)


def _export_fhir(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cloud.fhir import FhirSource, SearchError, parse_date_params, write_export
    from cloud.registry import Registry
    from cloud.timeseries import InfluxError

    name = "vitalbridge cloud export-fhir"
    try:
        span = parse_date_params([f"ge{args.start}", f"le{args.end}"])
    except SearchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if span.empty:
        print(f"{name}: --start must be before --end", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.format == "bundle" and out.is_dir():
        print(f"{name}: --out {out} is a directory; a bundle is written to a file", file=sys.stderr)
        return 2
    if args.format == "ndjson" and out.exists() and not out.is_dir():
        print(f"{name}: --out {out} is a file; NDJSON is written to a directory (one file per type)",
              file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"{name}: the directory of --out ({out.parent}) does not exist", file=sys.stderr)
        return 2
    opened = open_cloud_store(name, influx_url=args.influx_url, influx_db=args.influx_db,
                              database_url=args.database_url)
    if isinstance(opened, int):
        return opened
    config, store = opened

    async def export() -> int:
        registry = Registry(store.engine)
        patient = registry.patient(args.patient)
        if patient is None:
            print(f"{name}: no patient {args.patient!r} in the registry", file=sys.stderr)
            return 2
        async with config.influx_reader() as influx:
            counts = await write_export(FhirSource(store, registry, influx), patient, span, out, args.format,
                                        waveforms=args.waveforms)
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
        print(f"wrote {out}: {summary}")
        return 0

    try:
        return asyncio.run(export())
    except InfluxError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{name}: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _run(args: argparse.Namespace) -> int:
    from cloud.service import CloudConfig, CloudService, ConfigError, ServiceUnavailable
    from vitalbridge._signals import stop_on_signals

    name = f"vitalbridge cloud {args.cloud_command}"
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = CloudConfig.from_env(
            mqtt_url=args.mqtt_url, influx_url=args.influx_url, influx_db=args.influx_db,
            database_url=args.database_url, http_host=args.http_host, http_port=args.http_port,
            client_id=getattr(args, "client_id", None), shared_group=getattr(args, "shared_group", None),
            worker_index=getattr(args, "worker_index", None),
            rules_file=getattr(args, "rules_file", None),
        )
        config.token_secret()  # an unreadable or short key file is a setting error, said now
        config.alerting_context()  # a mistake in the alerting policy file stops here, in one line
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    workers = getattr(args, "workers", 1)
    if workers < 1 or workers > 64:
        print(f"{name}: --workers must be between 1 and 64, not {workers}", file=sys.stderr)
        return 2
    if workers > 1:
        from vitalbridge.workers import run_workers

        return run_workers(config, workers)

    async def main() -> None:
        service = CloudService(config, api=args.api, ingest=args.ingest)
        await service.start()
        what = "API" if args.api else "health and metrics"
        print(f"VitalBridge cloud ({args.cloud_command}): {what} on {service.api_url}"
              + (f" (docs {service.api_url}/api/docs)" if args.api else ""), flush=True)
        stop = asyncio.Event()
        try:
            with stop_on_signals(stop):
                await stop.wait()
        finally:
            await service.stop()

    try:
        asyncio.run(main())
    except ServiceUnavailable as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"{name}: cannot start: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0
