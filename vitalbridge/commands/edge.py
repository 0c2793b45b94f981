"""`vitalbridge edge ...`: set up, enrol, run and check the gateway; scan for BLE devices; pair a device to a
patient."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from device_profiles import DeviceProfile, ProfileError, load_library
from edge import scan
from edge.config import ConfigError, DeviceConfig, load_config
from edge.config_edit import append_device, check_text, new_config_text, write_atomically
from edge.localtime import UnknownTimezoneError, system_timezone, zone_for
from edge.status import StatusFileError, assess, read_status_file, render_status
from vitals.endpoints import parse_mqtt_url
from vitals.samples import is_identifier

__all__ = ["DEFAULT_CONFIG", "PairingError", "add_parser", "init_config", "pair_device"]

DEFAULT_CONFIG = "/etc/vitalbridge/gateway.yaml"
"""Where the systemd unit (deploy/systemd/vitalbridge-gateway.service) reads the config."""

GATEWAY_USER = "vitalbridge-gateway"
"""The user the systemd unit runs the gateway as; ``enroll`` run as root gives it the files it writes."""

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
                profiles: Mapping[str, DeviceProfile] | None = None, device_id: str | None = None,
                transport: str | None = None) -> DeviceConfig:
    """Add a device to the gateway config at ``config_path`` (rewritten atomically); return it.

    Comments, order and formatting of the file are kept. ``profiles`` defaults to the shipped
    library plus the config's ``profile_dirs``. ``transport`` ``virtual`` pairs a simulated device
    (``address`` is then a scenario name, see ``vitalbridge sim list``). Raises
    :class:`PairingError` for an unknown profile, a transport the profile does not speak, a
    malformed address, or an id or address already paired; :class:`ConfigError` for a config that
    cannot be read; :class:`ProfileError` for a broken profile file.
    """
    config = load_config(config_path)
    if profiles is None:
        profiles = load_library(config.profile_dirs)
    profile = profiles.get(profile_id)
    if profile is None:
        raise PairingError(f"unknown profile {profile_id!r}; see `vitalbridge profiles list`")
    transport = transport or profile.transport
    if transport not in (profile.transport, "virtual"):
        raise PairingError(f"profile {profile_id} is a {profile.transport} device, not {transport}")
    address = address.strip()
    if transport == "ble" and not (_MAC.match(address) or _PLATFORM_UUID.match(address)):
        raise PairingError(f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")
    if not address:
        raise PairingError("the address (serial port, or scenario for a simulated device) is empty")
    if not is_identifier(patient):
        raise PairingError(f"patient id {patient!r} must be 1-64 letters, digits, '.', '_' or '-'")
    taken = {device.id for device in config.devices}
    if device_id is not None and device_id in taken:
        raise PairingError(f"device id {device_id!r} is already in {config_path}")
    for device in config.devices:
        if device.transport == transport != "virtual" and _same_address(transport, device.address, address):
            raise PairingError(f"{address} is already paired as device {device.id!r} "
                               f"(patient {device.patient}, profile {device.profile})")
    device_id = device_id or _default_device_id(profile, transport, address, taken)
    if not is_identifier(device_id):
        raise PairingError(f"device id {device_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    device = DeviceConfig(id=device_id, patient=patient, profile=profile_id, transport=transport, address=address)
    updated = append_device(config_path, {"id": device.id, "patient": device.patient, "profile": device.profile,
                                          "transport": device.transport, "address": device.address})
    return next(d for d in updated.devices if d.id == device.id)


def _fail(command: str, message: object) -> int:
    print(f"vitalbridge edge {command}: {message}", file=sys.stderr)
    return 2


def _profile_problem(exc: ProfileError) -> str:
    from edge.gateway import first_problem

    return f"broken device profile: {first_problem(exc)}"


def _run(args: argparse.Namespace) -> int:
    from vitalbridge.gateway import run_gateway

    return run_gateway(Path(args.config))


def _scan(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.profile_dir]
    config = args.config if args.config is not None else (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)
    try:
        if config is not None:
            dirs = [*(Path(d) for d in load_config(Path(config)).profile_dirs), *dirs]
        profiles = load_library(dirs)
    except ConfigError as exc:
        return _fail("scan", exc)
    except ProfileError as exc:
        return _fail("scan", _profile_problem(exc))
    try:
        advertisements = asyncio.run(scan.scan_advertisements(args.timeout))
    except scan.BluetoothUnavailableError as exc:
        return _fail("scan", f"no usable Bluetooth adapter: {exc}")
    if not advertisements:
        print(f"no BLE devices heard in {args.timeout:g} s")
        return 0
    print(scan.format_matches(scan.match_advertisements(advertisements, profiles)))
    return 0


def _pair(args: argparse.Namespace) -> int:
    try:
        device = pair_device(Path(args.config), address=args.address, profile_id=args.profile,
                             patient=args.patient, device_id=args.id, transport=args.transport)
    except (PairingError, ConfigError) as exc:
        return _fail("pair", exc)
    except ProfileError as exc:
        return _fail("pair", _profile_problem(exc))
    print(f"paired {device.id}: {device.profile} at {device.address} ({device.transport}) for patient "
          f"{device.patient} in {args.config}; restart the gateway to start reading it")
    return 0


def _process_alive(pid: Any) -> bool | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running as another user (systemd): alive
        return True
    except OSError:
        return None
    return True


def _status(args: argparse.Namespace) -> int:
    try:
        path = Path(args.status_file) if args.status_file else load_config(Path(args.config)).status_path
        status = read_status_file(path)
    except (ConfigError, StatusFileError) as exc:
        if args.json:
            print(json.dumps({"state": "unknown", "ok": False, "error": str(exc)}))
        return _fail("status", exc)
    now_s = time.time()
    alive = _process_alive(status.get("pid")) if status.get("running") else None
    verdict = assess(status, now_s, process_alive=alive)
    if args.json:
        print(json.dumps({**status, "state": verdict.state, "ok": verdict.ok, "headline": verdict.headline,
                          "now": now_s}, sort_keys=True))
    else:
        local_zone = dt.datetime.now().astimezone().tzinfo
        print(render_status(status, now_s, process_alive=alive, zone=local_zone))
    return 0 if verdict.ok else 1


def _ask(question: str, default: str | None, check: Callable[[str], str | None]) -> str:
    """Ask until the answer passes ``check`` (which returns a problem or None); Enter takes ``default``."""
    while True:
        suffix = f" [{default}]" if default else ""
        answer = input(f"{question}{suffix}: ").strip() or (default or "")
        problem = check(answer)
        if problem is None:
            return answer
        print(f"  {problem}")


def _identifier_problem(text: str) -> str | None:
    return None if is_identifier(text) else "use 1-64 letters, digits, '.', '_' or '-' (no spaces)"


def _url_problem(text: str) -> str | None:
    try:
        parse_mqtt_url(text)
    except ValueError as exc:
        return f"{exc} (ask your care team for the address, e.g. mqtts://broker.example.org:8883)"
    return None


def _zone_problem(text: str) -> str | None:
    try:
        zone_for(text)
    except UnknownTimezoneError as exc:
        return str(exc)
    return None


def _default_spool(config_path: Path) -> str:
    absolute = config_path.absolute()
    if absolute.parts[:2] == ("/", "etc"):
        return "/var/lib/vitalbridge/spool.db"  # the systemd unit's StateDirectory
    return str(absolute.parent / "spool.db")


def init_config(config_path: Path, *, gateway: str, mqtt_url: str, spool: str | None = None,
                timezone: str | None = None, batch_interval_s: float = 5.0, force: bool = False,
                today: dt.date | None = None) -> None:
    """Write a new commented gateway config at ``config_path`` (``vitalbridge edge init``).

    Refuses (:class:`ConfigError`) to overwrite an existing file unless ``force``, and to write a
    config the gateway would refuse.
    """
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} already exists; add devices with `vitalbridge edge pair`, or give "
                          "--force to replace it")
    text = new_config_text(gateway=gateway, mqtt_url=mqtt_url, spool=spool or _default_spool(config_path),
                           timezone=timezone, batch_interval_s=batch_interval_s, today=today)
    check_text(text, config_path)
    try:
        write_atomically(config_path, text, mode=0o640)  # it may hold the broker password
    except OSError as exc:
        raise ConfigError(f"cannot write {config_path}: {exc.strerror or exc}"
                          + ("; try with sudo" if isinstance(exc, PermissionError) else "")) from None


def _init(args: argparse.Namespace) -> int:
    path = Path(args.config)
    interactive = sys.stdin.isatty() and not args.no_input
    gateway, mqtt_url, zone = args.gateway, args.mqtt_url, args.timezone
    try:
        if path.exists() and not args.force:
            raise ConfigError(f"{path} already exists; add devices with `vitalbridge edge pair`, or give --force "
                              "to replace it")
        if interactive:
            print(f"Setting up the VitalBridge gateway; the answers go to {path}. Press Enter to take [the default].")
            if gateway is None:
                gateway = _ask("Name of this gateway (from your care team)", None, _identifier_problem)
            if mqtt_url is None:
                mqtt_url = _ask("Cloud broker address (from your care team)", None, _url_problem)
            if zone is None:
                zone = _ask("Time zone", system_timezone() or "UTC", _zone_problem)
        missing = [flag for flag, value in (("--gateway", gateway), ("--mqtt-url", mqtt_url)) if value is None]
        if missing:
            raise ConfigError(f"missing {' and '.join(missing)} (or run it in a terminal to be asked)")
        assert gateway is not None and mqtt_url is not None
        init_config(path, gateway=gateway, mqtt_url=mqtt_url, spool=args.spool,
                    timezone=zone if zone is not None else system_timezone(),
                    batch_interval_s=args.batch_interval, force=args.force, today=dt.date.today())
    except ConfigError as exc:
        return _fail("init", exc)
    except (EOFError, KeyboardInterrupt):
        print()
        return _fail("init", "stopped; nothing written")
    print(f"wrote {path}. Next: pair a device with `vitalbridge edge pair --config {path} ...`, then start the "
          "gateway (see docs/home-gateway.md)")
    return 0


def _owner(name: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the user to give the enrolment's files to: ``name``, else the gateway's service user when
    run as root and that user exists, else nobody (the files stay the caller's)."""
    import pwd

    if name is None:
        if os.geteuid() != 0:
            return None
        name = GATEWAY_USER
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"no user {name!r} on this machine (--owner)") from None
    return entry.pw_uid, entry.pw_gid


def _enroll(args: argparse.Namespace) -> int:
    from edge.enrol import EnrolmentFailed, check_cloud_url, enrol

    path = Path(args.config)
    try:
        _base, plain = check_cloud_url(args.cloud)
        owner = _owner(args.owner)
        if owner is not None and os.geteuid() != 0 and owner[0] != os.geteuid():
            raise ConfigError("only root may give the files to another user; run it with sudo")
        if plain:
            print("vitalbridge edge enroll: warning: plain http:// to this machine; fine for trying things out, "
                  "never across a network", file=sys.stderr)
        zone = system_timezone()
        # Only used when there is no config yet: the enrolment fills in the gateway and the broker.
        template = new_config_text(gateway="enrolling", mqtt_url="mqtt://localhost", spool=_default_spool(path),
                                   timezone=zone, today=dt.date.today())
        done = enrol(args.code, args.cloud, path, ca_file=Path(args.ca_file) if args.ca_file else None,
                     credentials_dir=Path(args.credentials_dir) if args.credentials_dir else None, owner=owner,
                     new_config=template)
    except (EnrolmentFailed, ConfigError) as exc:
        return _fail("enroll", exc)
    patients = ", ".join(done.patients) or "none yet (your care team binds them)"
    print(f"enrolled: this is gateway {done.gateway}, sending for patient(s) {patients} to {done.broker_url}")
    kept = [str(f) for f in (done.password_file, done.ca_file) if f is not None]
    if kept:
        whose = f"user {args.owner or GATEWAY_USER}" if owner is not None else "you"
        print(f"kept {', '.join(kept)} (readable by {whose} alone)")
    print(f"{'wrote' if done.created_config else 'updated'} {path}. Next: pair a device with `vitalbridge edge pair "
          f"--config {path} --patient {done.patients[0] if done.patients else 'ID'} ...`, then start the gateway")
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("the scan time must be in 0..600 s")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("the batch interval must be in 0.05..3600 s")
    return value


def add_parser(subparsers: Any) -> None:
    """Register the `edge` command group: ``init``, ``enroll``, ``run``, ``status``, ``scan``, ``pair``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "edge", help="home gateway: init, enroll, run, status, scan, pair")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    commands = parser.add_subparsers(dest="edge_command", metavar="SUBCOMMAND")

    init = commands.add_parser("init", help="write a new gateway config (asks, or takes flags)",
                               description="Writes a commented gateway config. In a terminal it asks for what "
                                           "the flags do not give; otherwise --gateway and --mqtt-url are needed.")
    init.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                      help=f"config file to write (default {DEFAULT_CONFIG})")
    init.add_argument("--gateway", metavar="ID", help="this gateway's name")
    init.add_argument("--mqtt-url", metavar="URL", help="cloud broker, mqtt[s]://[user:password@]host[:port]")
    init.add_argument("--timezone", metavar="ZONE", help="IANA time zone, e.g. Europe/Berlin (default: the system's)")
    init.add_argument("--spool", metavar="FILE", help="spool database (default: /var/lib/vitalbridge/spool.db for a "
                                                       "config in /etc, else spool.db beside the config)")
    init.add_argument("--batch-interval", type=_interval, default=5.0, metavar="S",
                      help="seconds between sendings (default 5)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.add_argument("--no-input", action="store_true", help="never ask, even in a terminal")
    init.set_defaults(func=_init)

    enroll = commands.add_parser(
        "enroll", help="enrol this gateway with the code from your care team",
        description="Trades a one-time enrolment code for this gateway's name, its patients, the broker's address "
                    "and CA, and its broker login; keeps the login readable by the gateway's user alone and writes "
                    "or updates the gateway config.")
    enroll.add_argument("--code", required=True, help="the enrolment code, e.g. ABCD-EFGH-JK")
    enroll.add_argument("--cloud", required=True, metavar="URL", help="the cloud's address, https://...")
    enroll.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"gateway config to write or update (default {DEFAULT_CONFIG})")
    enroll.add_argument("--ca-file", metavar="PEM", help="trust the cloud's certificate through this CA file "
                                                        "(default: the system's CAs)")
    enroll.add_argument("--credentials-dir", metavar="DIR",
                        help="where to keep the broker login and CA (default: credentials/ beside the config)")
    enroll.add_argument("--owner", metavar="USER", help=f"give the files to this user (default, as root: "
                                                        f"{GATEWAY_USER} when that user exists)")
    enroll.set_defaults(func=_enroll)

    run = commands.add_parser("run", help="run the gateway until interrupted")
    run.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                     help=f"gateway config (default {DEFAULT_CONFIG})")
    run.set_defaults(func=_run)

    status = commands.add_parser("status", help="is the gateway working? (reads the running gateway's status file)",
                                 description="Exit status 0 when the gateway runs and is connected to the cloud, "
                                             "1 when not, 2 when there is no status to read.")
    status.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"gateway config, to find its status file (default {DEFAULT_CONFIG})")
    status.add_argument("--status-file", metavar="FILE", help="read this status file instead")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.set_defaults(func=_status)

    scan_parser = commands.add_parser("scan", help="list nearby BLE devices and the profile each matches")
    scan_parser.add_argument("--timeout", type=_positive_seconds, default=5.0, metavar="S",
                             help="how long to listen, in seconds (default 5)")
    scan_parser.add_argument("--config", metavar="FILE",
                             help=f"also match the profiles in this config's profile_dirs (default {DEFAULT_CONFIG} "
                                  "when it exists)")
    scan_parser.add_argument("--profile-dir", action="append", default=[], metavar="DIR",
                             help="also load <vendor>/<model>.yaml profiles from DIR (repeatable)")
    scan_parser.set_defaults(func=_scan)

    pair = commands.add_parser("pair", help="add a device for a patient to the gateway config")
    pair.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                      help=f"gateway config to update (default {DEFAULT_CONFIG})")
    pair.add_argument("--address", required=True,
                      help="Bluetooth address; serial port for serial devices; scenario for --transport virtual")
    pair.add_argument("--profile", required=True, metavar="ID", help="device profile id, e.g. nonin.xpod")
    pair.add_argument("--patient", required=True, metavar="ID", help="patient id")
    pair.add_argument("--id", metavar="DEVICE_ID", help="device id (default: from profile and address)")
    pair.add_argument("--transport", choices=("ble", "serial", "virtual"),
                      help="default: the profile's transport; virtual: a simulated device, for trying things out")
    pair.set_defaults(func=_pair)
