"""`vitalbridge cloud init-pki DIR`: the broker's CA, its server certificate and the cloud's broker accounts."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_pki_parser"]


def add_pki_parser(commands: Any) -> None:
    """Register ``cloud init-pki`` under the ``cloud`` command group."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "init-pki", help="make the broker's CA, TLS certificate and the cloud's broker accounts",
        description="Write into DIR: a CA (ca.pem, ca.key), the broker's TLS certificate for 127.0.0.1, localhost "
        "and every --name (broker.pem, broker.key), the broker admin and ingest accounts (broker-admin.json, "
        "ingest.json) and the first state of Mosquitto's dynamic-security plugin (dynamic-security.json). "
        "Private files are readable by their owner only. Run again to add names or renew the broker's "
        "certificate: an existing CA, the accounts and the broker's state are kept.")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--name", dest="names", action="append", default=[], metavar="NAME",
                        help="another host name or IP address gateways use to reach the broker (repeatable)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from cloud.broker import PkiError, init_pki
    except ImportError as exc:
        print(f"vitalbridge cloud init-pki: needs the cloud extra (pip install 'vitalbridge[cloud]'): {exc}",
              file=sys.stderr)
        return 1
    try:
        result = init_pki(args.directory, args.names, now=dt.datetime.now(dt.UTC))
    except PkiError as exc:
        print(f"vitalbridge cloud init-pki: {exc}", file=sys.stderr)
        return 2
    files = result.files
    print(f"{'made a new CA' if result.created_ca else 'kept the existing CA'}: {files.ca_cert}")
    print(f"broker certificate for {', '.join(result.names)} until {result.broker_expires:%Y-%m-%d}: "
          f"{files.broker_cert} (key {files.broker_key})")
    print(f"broker accounts: {files.admin} (admin), {files.ingest} (ingest); "
          f"dynamic-security state: {files.dynsec}")
    return 0
