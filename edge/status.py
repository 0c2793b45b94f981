"""The gateway's status in plain words: what ``vitalbridge edge status`` reads and says.

The running agent keeps a small JSON status file up to date (:mod:`edge.status_keeper` writes it
atomically every few seconds, next to the spool by default). This module holds the pure parts:
the words for device happenings (:func:`describe_device_event`), the health verdict
(:func:`assess`) and the report (:func:`render_status`). Times in the file are Unix seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "STATUS_FORMAT",
    "StatusFileError",
    "Verdict",
    "age_words",
    "assess",
    "describe_device_event",
    "read_status_file",
    "render_status",
    "write_status_file",
]

STATUS_FORMAT = 1
"""Version of the status file's layout."""

_TRANSPORT_WORDS = {"ble": "Bluetooth", "serial": "serial port", "virtual": "simulated"}


class StatusFileError(RuntimeError):
    """The status file is missing or unreadable; the message says what to do."""


def age_words(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h 10 min``, ``2 days``: a duration for people."""
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = int(minutes // 60)
    if hours < 48:
        rest = int(minutes - hours * 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} days"


def describe_device_event(device_id: str, kind: str, detail: Mapping[str, Any]) -> str:
    """One log line for a device happening (``attached``, ``lost``, ``unreachable``, ``battery``...)."""
    transport = _TRANSPORT_WORDS.get(str(detail.get("transport", "")), "")
    where = detail.get("address") or detail.get("port")
    via = f" ({transport}{' ' + str(where) if where else ''})" if transport else ""
    reason = detail.get("reason")
    if kind == "attached":
        return f"device {device_id} connected{via}"
    if kind == "lost":
        return f"device {device_id} lost its link{via}: {_reason_words(str(reason or 'disconnected'))}"
    if kind == "unreachable":
        attempts = detail.get("attempts")
        tries = f" (attempt {attempts})" if attempts else ""
        return f"device {device_id} cannot be reached{via}: {reason or 'no reason given'}{tries}"
    if kind == "battery":
        return f"device {device_id} battery at {detail.get('percent')} %"
    fields = ", ".join(f"{key} {value}" for key, value in detail.items())
    return f"device {device_id}: {kind.replace('_', ' ')}" + (f" ({fields})" if fields else "")


def _reason_words(reason: str) -> str:
    words = {
        "disconnected": "the device disconnected (switched off, out of range, or finished its measurement)",
        "stopped": "the gateway is stopping",
        "port closed": "the port closed (unplugged?)",
        "link down without a disconnect event": "the Bluetooth link dropped without notice",
    }
    if reason.startswith("no data for"):
        return f"{reason}: the device stopped sending"
    return words.get(reason, reason)


@dataclass(frozen=True)
class Verdict:
    """The health of a gateway, from its status file: ``state`` is ``working``, ``disconnected``,
    ``stopping``, ``stopped`` or ``not responding``; ``ok`` is True only for ``working``; ``headline`` says it."""

    state: str
    ok: bool
    headline: str


def assess(status: Mapping[str, Any], now_s: float, *, process_alive: bool | None) -> Verdict:
    """Judge a status file read at ``now_s``; ``process_alive`` is whether its ``pid`` still runs (None: unknown)."""
    gateway = status.get("gateway", "?")
    updated = float(status.get("updated", 0.0))
    interval = float(status.get("interval_s", 2.0))
    age = now_s - updated
    if not status.get("running", False):
        return Verdict("stopped", False, f"Gateway {gateway} is not running: it stopped {age_words(age)} ago.")
    if process_alive is False:
        return Verdict("stopped", False, f"Gateway {gateway} is not running: its process ended without saying "
                       f"goodbye (last sign of life {age_words(age)} ago). Check `journalctl -u vitalbridge-gateway`.")
    if status.get("stopping", False) and age <= max(15.0, 5 * interval):
        return Verdict("stopping", False, f"Gateway {gateway} is stopping: it is sending what it holds, then ends.")
    if age > max(15.0, 5 * interval):
        return Verdict("not responding", False, f"Gateway {gateway} is not responding: its status is "
                       f"{age_words(age)} old. It may be stuck or stopped; restart it.")
    if not status.get("connected", False):
        return Verdict("disconnected", False, f"Gateway {gateway} is running but NOT connected to the cloud; "
                       "readings are kept and will be sent when the connection is back.")
    return Verdict("working", True, f"Gateway {gateway} is working and connected to the cloud.")


def _clock(seconds: float | None, zone: dt.tzinfo | None) -> str:
    if seconds is None:
        return "?"
    moment = dt.datetime.fromtimestamp(seconds, zone or dt.UTC)
    return moment.strftime("%H:%M") if zone is not None else moment.strftime("%H:%M UTC")


def _since(seconds: float | None, now_s: float, zone: dt.tzinfo | None) -> str:
    if seconds is None:
        return ""
    return f" since {_clock(seconds, zone)} ({age_words(now_s - seconds)} ago)"


def render_status(status: Mapping[str, Any], now_s: float, *, process_alive: bool | None,
                  zone: dt.tzinfo | None = None) -> str:
    """The status in plain words, several lines; ``zone`` is the reader's local time zone for clock times."""
    verdict = assess(status, now_s, process_alive=process_alive)
    lines = [verdict.headline]
    running = verdict.state not in ("stopped",)
    broker = status.get("broker", "?")
    if status.get("connected"):
        lines.append(f"  Cloud: connected to {broker}{_since(status.get('connected_since'), now_s, zone)}.")
    else:
        since = status.get("connected_since")
        tail = f" (not connected{_since(since, now_s, zone)})" if since is not None else " (not connected yet)"
        lines.append(f"  Cloud: {broker}{tail}.")
    spool = status.get("spool") or {}
    batches = int(spool.get("batches", 0))
    oldest = spool.get("oldest_unsent")
    if batches == 0:
        lines.append("  Waiting to be sent: nothing.")
    else:
        age = f", the oldest from {_clock(oldest, zone)} ({age_words(now_s - float(oldest))} ago)" if oldest else ""
        lines.append(f"  Waiting to be sent: {batches} batch{'es' if batches != 1 else ''}{age}.")
    sent = status.get("sent") or {}
    if sent.get("values"):
        lines.append(f"  Sent since the gateway started: {sent['values']} values; the cloud confirmed storing "
                     f"{sent.get('confirmed_values', 0)}.")
    devices = list(status.get("devices") or [])
    lines.append(f"  Devices ({len(devices)}):" if devices else "  Devices: none configured; add one with "
                 "`vitalbridge edge pair`.")
    for device in devices:
        lines.append("    " + _device_line(device, now_s, zone, running))
    problems = list(status.get("problems") or [])
    if problems:
        lines.append("  Recent problems (newest last):")
        for problem in problems[-5:]:
            lines.append(f"    {_clock(problem.get('time'), zone)}  {problem.get('message', '')}")
    lines.append(f"  (status written {age_words(now_s - float(status.get('updated', now_s)))} ago)")
    return "\n".join(lines)


def _device_line(device: Mapping[str, Any], now_s: float, zone: dt.tzinfo | None, running: bool) -> str:
    transport = _TRANSPORT_WORDS.get(str(device.get("transport")), str(device.get("transport")))
    head = f"{device.get('id')} ({device.get('profile')}, {transport}, patient {device.get('patient')}): "
    link = device.get("link")
    if link == "connected":
        state = f"connected{_since(device.get('link_since'), now_s, zone)}"
    elif link == "lost":
        since = _since(device.get("link_since"), now_s, zone)
        state = f"not connected: {_reason_words(str(device.get('link_reason') or 'disconnected'))}{since}"
    elif link == "unreachable":
        state = f"not connected: {device.get('link_reason') or 'cannot be reached'}"
    else:
        state = "not connected yet" if running else "not connected"
    last = device.get("last_reading")
    reading = f"last reading {age_words(now_s - float(last))} ago" if last is not None else "no reading yet"
    battery = device.get("battery_percent")
    power = f"; battery {battery} %" if battery is not None else ""
    return f"{head}{state}; {reading}{power}."


def write_status_file(path: Path, status: Mapping[str, Any]) -> None:
    """Write ``status`` as JSON to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(status, stream, indent=1, sort_keys=True)
        os.chmod(temporary, 0o644)  # readable by `edge status` run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_status_file(path: Path) -> dict[str, Any]:
    """Read the status file; :class:`StatusFileError` when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StatusFileError(f"no status file at {path}: the gateway has not run with this config yet (start "
                              "it with `vitalbridge edge run` or `systemctl start vitalbridge-gateway`)") from None
    except PermissionError:
        raise StatusFileError(f"no permission to read {path}; try with sudo") from None
    except (OSError, ValueError) as exc:
        raise StatusFileError(f"cannot read the status file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != STATUS_FORMAT:
        raise StatusFileError(f"{path} is not a status file this version understands")
    return data
