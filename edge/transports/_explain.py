"""Why a device could not be reached, in words a family member can act on (not a bare exception name)."""

from __future__ import annotations

import errno
import re

__all__ = ["explain_ble_failure", "explain_serial_failure"]


def _text(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def explain_ble_failure(exc: BaseException, *, timeout_s: float) -> str:
    """One sentence for a failed Bluetooth connection attempt (``timeout_s``: the connect timeout)."""
    from edge.transports._ble_client import BleDeviceNotFoundError

    text = _text(exc)
    lowered = text.lower()
    if isinstance(exc, BleDeviceNotFoundError):
        return "not found nearby: is it switched on, within a few metres and not connected to a phone?"
    if isinstance(exc, TimeoutError):
        return f"did not answer within {timeout_s:g} s: is it switched on and within a few metres?"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError) or "dbus" in lowered or "d-bus" in lowered:
        return ("cannot reach the system Bluetooth service (BlueZ over D-Bus): is bluetoothd running "
                f"and is there a Bluetooth adapter? ({text})")
    if "no bluetooth adapters" in lowered or ("adapter" in lowered and "not found" in lowered):
        return "no Bluetooth adapter found: plug one in or switch Bluetooth on"
    if isinstance(exc, PermissionError) or "notpermitted" in lowered or "notauthorized" in lowered:
        return f"Bluetooth refused access: run the gateway as a user allowed to use Bluetooth ({text})"
    if "powered" in lowered:
        return f"the Bluetooth adapter is switched off: switch it on (bluetoothctl power on) ({text})"
    return text


def explain_serial_failure(exc: BaseException, *, port: str, timeout_s: float) -> str:
    """One sentence for a serial port that could not be opened or read (``timeout_s``: the open timeout)."""
    text = _text(exc)
    number = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, TimeoutError):
        return f"port {port} did not open within {timeout_s:g} s"
    # pyserial's SerialException carries the errno only in its text: "[Errno 2] could not open port ...".
    if number is None and (match := re.search(r"\[Errno (\d+)\]", text)):
        number = int(match.group(1))
    if isinstance(exc, FileNotFoundError) or number == errno.ENOENT or "No such file or directory" in text:
        return f"port {port} does not exist: is the device (or its USB cable) plugged in?"
    if isinstance(exc, PermissionError) or number == errno.EACCES or "Permission denied" in text:
        return f"no permission to open {port}: add the gateway's user to the 'dialout' group"
    if number == errno.EBUSY or "busy" in text.lower():
        return f"port {port} is in use by another program"
    return text
