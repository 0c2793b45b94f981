"""`vitalbridge edge ...`: run the gateway, scan for BLE devices, pair a device to a patient."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from device_profiles import DeviceProfile, ProfileError, load_library
from edge import scan
from edge.config import ConfigError, DeviceConfig, dump_config, load_config, parse_config
from vitals.samples import is_identifier

__all__ = ["PairingError", "add_parser", "pair_device"]

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_PLATFORM_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


class PairingError(ValueError):
    """A device that cannot be added to the gateway config; the message says why."""


def _same_address(transport: str, a: str, b: str) -> bool:
    return a.casefold() == b.casefold() if transport == "ble" else a == b


def _default_device_id(profile: DeviceProfile, transport: str, address: str, taken: set[str]) -> str:
    """``<model>-<address tail>``, e.g. ``xpod-ttyusb0`` or ``heart_rate_strap-0a1122``, made unique."""
    model = profile.id.split(".", 1)[-1]
    if transport == "ble":  # the last three octets of the address, as printed on most devices' labels
        tail = re.sub(r"[^0-9a-z]", "", address.casefold())[-6:]
    else:  # the port's name: ttyUSB0, usb-FTDI_..._A50285BI-if00-port0
        tail = re.sub(r"[^0-9a-z]", "", Path(address).name.casefold())[-20:]
    tail = tail or "device"
    base = f"{model}-{tail}"[:60]
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def pair_device(config_path: Path, *, address: str, profile_id: str, patient: str,
                profiles: Mapping[str, DeviceProfile], device_id: str | None = None,
                transport: str | None = None) -> DeviceConfig:
    """Add a device to the gateway config at ``config_path`` (rewritten atomically); return it.

    Raises :class:`PairingError` for an unknown profile, a transport the profile does not speak,
    a malformed address, or an id or address already paired; :class:`ConfigError` for a config
    that cannot be read. Comments in the file are not preserved.
    """
    config = load_config(config_path)
    profile = profiles.get(profile_id)
    if profile is None:
        raise PairingError(f"unknown profile {profile_id!r}; see `vitalbridge profiles list`")
    transport = transport or profile.transport
    if transport != profile.transport:
        raise PairingError(f"profile {profile_id} is a {profile.transport} device, not {transport}")
    address = address.strip()
    if transport == "ble" and not (_MAC.match(address) or _PLATFORM_UUID.match(address)):
        raise PairingError(f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")
    if not address:
        raise PairingError("the address (serial port) is empty")
    if not is_identifier(patient):
        raise PairingError(f"patient id {patient!r} must be 1-64 letters, digits, '.', '_' or '-'")
    taken = {device.id for device in config.devices}
    if device_id is not None and device_id in taken:
        raise PairingError(f"device id {device_id!r} is already in {config_path}")
    for device in config.devices:
        if device.transport == transport and _same_address(transport, device.address, address):
            raise PairingError(f"{address} is already paired as device {device.id!r} "
                               f"(patient {device.patient}, profile {device.profile})")
    device_id = device_id or _default_device_id(profile, transport, address, taken)
    if not is_identifier(device_id):
        raise PairingError(f"device id {device_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    device = DeviceConfig(id=device_id, patient=patient, profile=profile_id, transport=transport, address=address)
    text = dump_config(replace(config, devices=(*config.devices, device)))
    parse_config(yaml.safe_load(text), str(config_path))  # never write a file the gateway would refuse
    _write_atomically(config_path, text)
    return device


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _run(args: argparse.Namespace) -> int:
    from vitalbridge.gateway import run_gateway

    return run_gateway(Path(args.config))


def _scan(args: argparse.Namespace) -> int:
    try:
        profiles = load_library()
    except ProfileError as exc:
        print(f"vitalbridge edge scan: broken device profiles:\n{exc}", file=sys.stderr)
        return 2
    try:
        advertisements = asyncio.run(scan.scan_advertisements(args.timeout))
    except scan.BluetoothUnavailableError as exc:
        print(f"vitalbridge edge scan: no usable Bluetooth adapter: {exc}", file=sys.stderr)
        return 2
    if not advertisements:
        print(f"no BLE devices heard in {args.timeout:g} s")
        return 0
    print(scan.format_matches(scan.match_advertisements(advertisements, profiles)))
    return 0


def _pair(args: argparse.Namespace) -> int:
    try:
        device = pair_device(Path(args.config), address=args.address, profile_id=args.profile,
                             patient=args.patient, profiles=load_library(), device_id=args.id,
                             transport=args.transport)
    except (PairingError, ConfigError, ProfileError) as exc:
        print(f"vitalbridge edge pair: {exc}", file=sys.stderr)
        return 2
    print(f"paired {device.id}: {device.profile} at {device.address} ({device.transport}) for patient "
          f"{device.patient} in {args.config}; restart the gateway to start reading it")
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("the scan time must be in 0..600 s")
    return value


def add_parser(subparsers: Any) -> None:
    """Register the `edge` command group: ``run``, ``scan``, ``pair``."""
    parser: argparse.ArgumentParser = subparsers.add_parser("edge", help="home gateway: run, scan, pair")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    commands = parser.add_subparsers(dest="edge_command", metavar="SUBCOMMAND")

    run = commands.add_parser("run", help="run the gateway until interrupted")
    run.add_argument("--config", required=True, metavar="FILE", help="gateway config (YAML)")
    run.set_defaults(func=_run)

    scan_parser = commands.add_parser("scan", help="list nearby BLE devices and the profile each matches")
    scan_parser.add_argument("--timeout", type=_positive_seconds, default=5.0, metavar="S",
                             help="how long to listen, in seconds (default 5)")
    scan_parser.set_defaults(func=_scan)

    pair = commands.add_parser("pair", help="add a device for a patient to the gateway config")
    pair.add_argument("--config", required=True, metavar="FILE", help="gateway config (YAML) to update")
    pair.add_argument("--address", required=True, help="Bluetooth address, or serial port for serial devices")
    pair.add_argument("--profile", required=True, metavar="ID", help="device profile id, e.g. nonin.xpod")
    pair.add_argument("--patient", required=True, metavar="ID", help="patient id")
    pair.add_argument("--id", metavar="DEVICE_ID", help="device id (default: from profile and address)")
    pair.add_argument("--transport", choices=("ble", "serial"), help="default: the profile's transport")
    pair.set_defaults(func=_pair)
