"""``edge scan``: which nearby BLE devices are there, and which profile fits each.

Matching is pure (:func:`match_profiles`, :func:`match_advertisements`): an advertisement's local
name and service UUIDs against each BLE profile's ``match`` filters. :func:`scan_advertisements`
is the radio edge, listening with bleak for a while; on a machine without a usable Bluetooth
adapter it raises :class:`BluetoothUnavailableError` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from device_profiles.profile import DeviceProfile, normalize_uuid

__all__ = [
    "Advertisement",
    "BluetoothUnavailableError",
    "ScanMatch",
    "format_matches",
    "match_advertisements",
    "match_profiles",
    "scan_advertisements",
]


class BluetoothUnavailableError(RuntimeError):
    """No usable Bluetooth adapter (none present, powered off, or no BlueZ/D-Bus)."""


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one device advertised: address, local name, service UUIDs (128-bit), RSSI (dBm)."""

    address: str
    name: str | None
    service_uuids: tuple[str, ...] = ()
    rssi: int | None = None

    @classmethod
    def create(cls, address: str, name: str | None, service_uuids: Iterable[str] = (),
               rssi: int | None = None) -> Advertisement:
        """An advertisement with UUIDs normalised to lower-case 128-bit form, sorted."""
        return cls(address, name or None, tuple(sorted({normalize_uuid(u) for u in service_uuids})), rssi)


@dataclass(frozen=True, slots=True)
class ScanMatch:
    """A device seen and the ids of the profiles that fit it (empty: none does)."""

    advertisement: Advertisement
    profile_ids: tuple[str, ...]


def _specificity(advertisement: Advertisement, profile: DeviceProfile) -> int:
    """2 for a name pattern that fits, plus 1 for an advertised service the profile lists."""
    assert profile.ble is not None
    name = advertisement.name
    by_name = name is not None and any(fnmatch.fnmatchcase(name, p) for p in profile.ble.name_patterns)
    by_service = bool(set(advertisement.service_uuids).intersection(profile.ble.service_uuids))
    return 2 * by_name + by_service


def match_profiles(advertisement: Advertisement, profiles: Mapping[str, DeviceProfile]) -> list[str]:
    """Ids of the BLE profiles the advertisement fits (per the profile's own ``matches`` rule).

    The most specific come first: a vendor profile that recognises the device by name before a
    generic one that only knows its standard service; ties by id.
    """
    fitting = [
        profile
        for profile in profiles.values()
        if profile.ble is not None and profile.ble.matches(advertisement.name, advertisement.service_uuids)
    ]
    fitting.sort(key=lambda profile: (-_specificity(advertisement, profile), profile.id))
    return [profile.id for profile in fitting]


def match_advertisements(advertisements: Iterable[Advertisement],
                         profiles: Mapping[str, DeviceProfile]) -> list[ScanMatch]:
    """Match every advertisement; matched devices first, then by signal strength, then address."""
    matches = [ScanMatch(adv, tuple(match_profiles(adv, profiles))) for adv in advertisements]
    return sorted(matches, key=lambda m: (not m.profile_ids, -(m.advertisement.rssi or -999),
                                          m.advertisement.address))


def format_matches(matches: Sequence[ScanMatch]) -> str:
    """A plain table: address, RSSI, name, matching profiles ("-" for none)."""
    lines = [f"{'ADDRESS':<20} {'RSSI':>5}  {'NAME':<24} PROFILES"]
    for match in matches:
        adv = match.advertisement
        rssi = "" if adv.rssi is None else str(adv.rssi)
        lines.append(f"{adv.address:<20} {rssi:>5}  {(adv.name or '-'):<24} {', '.join(match.profile_ids) or '-'}")
    return "\n".join(lines)


async def _bleak_discover(timeout_s: float) -> list[Advertisement]:
    from bleak import BleakScanner

    found = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    return [
        Advertisement.create(device.address, adv.local_name or device.name, adv.service_uuids, adv.rssi)
        for device, adv in found.values()
    ]


async def scan_advertisements(timeout_s: float = 5.0) -> list[Advertisement]:
    """Listen for BLE advertisements for ``timeout_s`` seconds; one entry per device.

    Raises :class:`BluetoothUnavailableError` when the adapter or the system's Bluetooth service
    cannot be reached.
    """
    try:
        return await asyncio.wait_for(_bleak_discover(timeout_s), timeout_s + 10.0)
    except ImportError as exc:
        raise BluetoothUnavailableError(f"bleak is not installed ({exc})") from None
    except TimeoutError:
        raise BluetoothUnavailableError("the Bluetooth adapter did not answer") from None
    except OSError as exc:
        # No D-Bus socket or no BlueZ: the usual state of a container or a server without Bluetooth.
        raise BluetoothUnavailableError(f"cannot reach the system Bluetooth service (BlueZ over D-Bus): "
                                        f"{exc.strerror or exc}") from None
    except Exception as exc:  # bleak's BleakError and backend errors: no adapter, powered off...
        raise BluetoothUnavailableError(str(exc) or type(exc).__name__) from None
