"""The gateway's local time zone: an IANA name (``Europe/Berlin``) with daylight saving, via zoneinfo.

Devices that stamp readings in local time without a zone (most blood-pressure cuffs, scales and
glucose meters) are decoded with the gateway's zone. :func:`zone_for` and :func:`offset_s_at` are
pure; :func:`system_timezone` reads the machine's setting (the ``TZ`` variable, ``/etc/timezone``,
the ``/etc/localtime`` link) and is called once, when the config is loaded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["UnknownTimezoneError", "offset_s_at", "system_timezone", "zone_for"]


class UnknownTimezoneError(ValueError):
    """A time zone name the zone database does not know; the message suggests close names."""


def zone_for(name: str | None, utc_offset_s: int | None = None) -> dt.tzinfo:
    """The zone called ``name`` (IANA), else the fixed ``utc_offset_s`` (s east of UTC), else UTC."""
    if name is not None:
        if name.startswith(("/", ".")) or ".." in name:
            raise UnknownTimezoneError(f"{name!r} is a path, not a time zone name like Europe/Berlin")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            hint = _close_names(name)
            raise UnknownTimezoneError(
                f"unknown time zone {name!r}; use a name like Europe/Berlin or America/New_York"
                + (f" (did you mean {', '.join(hint)}?)" if hint else "")) from None
    if utc_offset_s is not None:
        return dt.timezone(dt.timedelta(seconds=utc_offset_s))
    return dt.UTC


def offset_s_at(zone: dt.tzinfo, utc_ns: int) -> int:
    """Local time minus UTC, in seconds, in ``zone`` at the instant ``utc_ns`` (ns since the epoch)."""
    instant = dt.datetime.fromtimestamp(utc_ns // 1_000_000_000, dt.UTC)
    offset = instant.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def system_timezone() -> str | None:
    """The machine's IANA zone name, or None when it cannot be told (then the gateway uses UTC)."""
    candidates: list[str] = []
    variable = os.environ.get("TZ", "").removeprefix(":")
    if variable:
        candidates.append(variable)
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        try:
            zone_for(name)
        except UnknownTimezoneError:
            continue
        return name
    return None


def _close_names(name: str) -> list[str]:
    import difflib

    wanted = name.replace(" ", "_")
    return difflib.get_close_matches(wanted, sorted(available_timezones()), n=3, cutoff=0.75)
