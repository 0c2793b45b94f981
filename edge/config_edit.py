"""Write and edit gateway config files without losing what people wrote.

:func:`new_config_text` renders the commented file ``vitalbridge edge init`` writes;
:func:`append_device` adds a device to an existing file with ruamel.yaml's round-trip mode, so
comments, key order, quoting and blank lines stay as they were. Both check the result with
:func:`edge.config.parse_config` before anything is written, and write atomically.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from device_profiles.userfile import read_yaml_text
from edge.config import ConfigError, ConfigSource, GatewayConfig, parse_config

__all__ = ["append_device", "check_text", "new_config_text", "set_broker", "write_atomically"]

_KEY_LINE = re.compile(r"^ *[A-Za-z_][\w.-]*:( |$)")


def write_atomically(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` in one step (a temporary file renamed over it), keeping its permissions
    and, where the caller may, its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        if path.exists():
            current = path.stat()
            os.chmod(temporary, current.st_mode & 0o777)
            if (current.st_uid, current.st_gid) != (os.geteuid(), os.getegid()):
                # Edited with sudo: the file stays its owner's (the gateway's user must still read it).
                with contextlib.suppress(PermissionError):
                    os.chown(temporary, current.st_uid, current.st_gid)
        elif mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_text(text: str, path: Path) -> GatewayConfig:
    """Parse ``text`` as the config at ``path`` would be parsed; :class:`ConfigError` if the gateway would refuse it."""
    try:
        document = read_yaml_text(text, str(path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(document.data, ConfigSource(str(path), document), base_dir=path.parent)


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar that every YAML reader reads back as this very text."""
    plain = value and value.strip() == value and not any(c in value for c in ":#{}[],&*!|>'\"%@`") \
        and yaml.safe_load(value) == value
    return value if plain else json.dumps(value)


def new_config_text(*, gateway: str, mqtt_url: str, spool: str, timezone: str | None,
                    batch_interval_s: float = 5.0, today: dt.date | None = None) -> str:
    """The commented config file ``vitalbridge edge init`` writes (no devices yet)."""
    stamp = f" on {today.isoformat()}" if today is not None else ""
    zone = (f"timezone: {_scalar(timezone)}" if timezone is not None
            else "# timezone: Europe/Berlin    # not set: the machine's time zone is used")
    return f"""\
# VitalBridge home gateway configuration, written by `vitalbridge edge init`{stamp}.
# After a change, restart the gateway (sudo systemctl restart vitalbridge-gateway).
# Is it working? Run: vitalbridge edge status --config <this file>. Guide: docs/home-gateway.md

# This gateway's name, as your care team knows it (letters, digits, '.', '_' or '-').
gateway: {_scalar(gateway)}

# The cloud's message broker. mqtts:// is encrypted; user:password@ if you were given a login.
mqtt_url: {_scalar(mqtt_url)}

# Where readings wait until the cloud has them; they survive restarts and power cuts.
spool: {_scalar(spool)}

# Your time zone (a name like Europe/Berlin), for devices that show the local time:
# blood-pressure cuffs, scales and glucose meters. Daylight saving is taken care of.
{zone}

# Seconds between two sendings of the readings collected.
batch_interval_s: {batch_interval_s:g}

# Folders of extra device profiles from a device vendor, if you were given any (relative to this file).
# profile_dirs: [vendor-profiles]

# How readings are sent to the cloud. The defaults suit almost every home; change them only if your
# care team asks you to (times in seconds).
# publisher:
#   ack_timeout_s: 30        # send a batch again when the cloud has not confirmed it after this long
#   window: 64               # batches sent and not yet confirmed, at most
#   reconnect_initial_s: 2   # first wait before reconnecting to the cloud, doubling up to
#   reconnect_max_s: 60      # ... this; each wait is shortened at random by up to
#   reconnect_jitter: 0.9    # ... this fraction, so many gateways do not return at the same second

# The devices this gateway reads. Add one with `vitalbridge edge pair` (find it with `vitalbridge edge scan`):
#   vitalbridge edge pair --config <this file> --address C4:7F:51:0A:11:22 --profile generic.bp_cuff --patient <id>
devices: []
"""


def _yaml_for(text: str) -> YAML:
    round_trip = YAML()  # round-trip mode: comments, order and quoting survive
    round_trip.preserve_quotes = True
    round_trip.width = 4096  # never re-wrap long lines people wrote
    try:
        _data, indent, block_indent = load_yaml_guess_indent(text)
    except YAMLError:
        indent, block_indent = None, None
    # Nested mappings: the smallest indent of a key line (ruamel's guess is the sequences').
    keys = [len(line) - len(line.lstrip(" ")) for line in text.splitlines() if _KEY_LINE.match(line)]
    mapping = min((k for k in keys if k > 0), default=2)
    if indent is not None and block_indent is not None:
        round_trip.indent(mapping=mapping, sequence=indent, offset=block_indent)
    else:
        round_trip.indent(mapping=mapping, sequence=mapping + 2, offset=mapping)
    return round_trip


def _move_trailing_comment(previous: Any, entry: CommentedMap) -> None:
    """Comments after the old last device (blank lines, a note on the next section) stay after the list.

    ruamel keeps them on the last key of the old last entry; the new entry goes after that entry, so
    they move to the new entry's last key (the old one keeps its end-of-line comment).
    """
    if not isinstance(previous, CommentedMap) or not previous or not entry:
        return
    slot = previous.ca.items.get(list(previous.keys())[-1])
    if not slot or len(slot) < 3 or slot[2] is None:
        return
    token = slot[2]
    end_of_line, _newline, rest = str(token.value).partition("\n")
    if not rest:
        return
    moved = copy.copy(token)
    moved.value = "\n" + rest
    if end_of_line.strip():
        token.value = end_of_line + "\n"
    else:
        slot[2] = None
    entry.ca.items[list(entry.keys())[-1]] = [None, None, moved, None]


def append_device(path: Path, device: Mapping[str, Any]) -> GatewayConfig:
    """Add ``device`` (``id``, ``patient``, ``profile``, ``transport``, ``address``, ``options``) to the
    file at ``path``, keeping everything else as written; returns the config as the gateway will read it.

    :class:`ConfigError` if the file cannot be read or the result would not be a valid config (then
    nothing is written).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (gateway config); create one with `vitalbridge edge init`") \
            from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    check_text(text, path)  # the file as it is must be valid before it is edited
    round_trip = _yaml_for(text)
    data = round_trip.load(text)
    devices = data.get("devices")
    if not devices:  # absent, null or [] (flow style): a fresh block list reads best
        devices = CommentedSeq()
        data["devices"] = devices
    entry = CommentedMap()
    for key in ("id", "patient", "profile", "transport", "address"):
        value = device.get(key)
        if value:
            text_value = str(value)
            entry[key] = DoubleQuotedScalarString(text_value) if key == "address" or _scalar(text_value) != \
                text_value else text_value
    if device.get("options"):
        entry["options"] = dict(device["options"])
    if devices:
        _move_trailing_comment(devices[-1], entry)
    devices.append(entry)
    buffer = io.StringIO()
    round_trip.dump(data, buffer)
    result = buffer.getvalue()
    config = check_text(result, path)  # never write a file the gateway would refuse
    write_atomically(path, result)
    return config


def _plain_or_quoted(value: str) -> str:
    return value if _scalar(value) == value else DoubleQuotedScalarString(value)


def set_broker(path: Path, *, gateway: str, mqtt_url: str, username: str | None, password_file: str | None,
               ca_file: str | None, base_text: str | None = None) -> GatewayConfig:
    """Point the config at ``path`` (or ``base_text``, a new file's text, when given) at the broker an
    enrolment named: set ``gateway`` and ``mqtt_url``, ``mqtt_password_file`` and ``mqtt_ca_file`` (a
    setting given as None is removed). The broker login is the gateway id; a ``username`` that differs
    from it goes into the URL. Everything else stays as written. :class:`ConfigError` when the file
    cannot be read or the result would not be a valid config (then nothing is written); returns the
    config as the gateway will read it.
    """
    if base_text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        check_text(text, path)  # the file as it is must be valid before it is edited
    else:
        text = base_text
    round_trip = _yaml_for(text)
    data = round_trip.load(text)
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    data["gateway"] = _plain_or_quoted(gateway)
    if username is not None and username != gateway:
        parts = urlsplit(mqtt_url)
        host = parts.netloc.rpartition("@")[2]
        mqtt_url = urlunsplit(parts._replace(netloc=f"{quote(username, safe='')}@{host}"))
    data["mqtt_url"] = _plain_or_quoted(mqtt_url)
    at = list(data.keys()).index("mqtt_url") + 1
    for key, value in (("mqtt_password_file", password_file), ("mqtt_ca_file", ca_file)):
        if value is None:
            data.pop(key, None)
        elif key in data:
            data[key] = _plain_or_quoted(value)
        else:
            data.insert(at, key, _plain_or_quoted(value))
            at += 1
    buffer = io.StringIO()
    round_trip.dump(data, buffer)
    result = buffer.getvalue()
    config = check_text(result, path)  # never write a file the gateway would refuse
    write_atomically(path, result, mode=0o640)
    return config
