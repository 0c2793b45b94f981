"""Check a gateway config against the device profiles and transports before anything starts.

:func:`edge.config.load_config` checks the file on its own; this adds what needs the profile
library and the transport registry: every device names a known profile and a transport that
speaks it, and its ``options`` are what that transport accepts; the decoders the profile names are
registered. The transport is then built once
(and dropped), so any remaining refusal (a missing address, an unknown scenario) is reported here,
with the device's line, rather than as a crash of a running gateway.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping
from typing import Any

from device_profiles.registry import DecoderRegistry
from device_profiles.userfile import FileProblem, UserFileError, validate
from edge.config import ConfigError, ConfigSource, GatewayConfig
from edge.transports import TransportRegistry

__all__ = ["check_devices"]

_PROFILE_TRANSPORTS = ("ble", "serial")  # transports that speak a profile's own attributes


def check_devices(config: GatewayConfig, *, profiles: Mapping[str, Any], transports: TransportRegistry,
                  decoders: DecoderRegistry | None = None, clock_ns: Callable[[], int] = time.time_ns) -> None:
    """Raise :class:`ConfigError` (one line per problem, the first in the message) if a device cannot run.

    With ``decoders``, every decoder a device's profile names must be registered (built in, or from
    an installed package's ``vitalbridge.decoders`` entry point).
    """
    source = config.source or ConfigSource("gateway config")
    problems: list[FileProblem] = []
    for index, device in enumerate(config.devices):
        where = ("devices", index)
        profile = profiles.get(device.profile)
        if profile is None:
            close = difflib.get_close_matches(device.profile, sorted(profiles), n=2, cutoff=0.7)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            dirs = "; profile_dirs: " + ", ".join(config.profile_dirs) if config.profile_dirs else ""
            problems.append(source.problem((*where, "profile"), f"unknown profile {device.profile!r}{hint}; "
                                           f"see `vitalbridge profiles list`{dirs}"))
            continue
        if device.transport not in transports.names() and transports.why_unavailable(device.transport):
            problems.append(source.problem((*where, "transport"), f"transport {device.transport!r}: "
                                           f"{transports.why_unavailable(device.transport)}"))
            continue
        if device.transport not in transports.names():
            problems.append(source.problem((*where, "transport"), f"unknown transport {device.transport!r}; "
                                           f"expected one of: {', '.join(transports.known_names())}"))
            continue
        speaks = getattr(profile, "transport", None)
        if device.transport in _PROFILE_TRANSPORTS and speaks in _PROFILE_TRANSPORTS and speaks != device.transport:
            problems.append(source.problem((*where, "transport"), f"profile {device.profile} is a {speaks} device, "
                                           f"not {device.transport}; write transport: {speaks}"))
            continue
        missing = sorted(name for name in profile.decoder_names() if name not in decoders) \
            if decoders is not None else []
        if missing:
            problems.append(source.problem((*where, "profile"), f"profile {device.profile} needs decoder "
                                           f"{missing[0]!r}, which no installed package provides; install the "
                                           "device vendor's package into the gateway's environment"))
            continue
        schema = transports.options_schema(device.transport)
        if schema is not None:
            try:
                validate(schema, device.options, file=source.file, document=source.document,
                         root=(*where, "options"))
            except UserFileError as exc:
                problems.extend(exc.problems)
                continue
        try:
            transports.get(device.transport)(device, profile, clock_ns)
        except (ValueError, KeyError, TypeError, OSError, ArithmeticError) as exc:
            message = str(exc).strip("'\"").removeprefix(f"device {device.id}: ")
            problems.append(source.problem(where, message))
    if problems:
        raise ConfigError(problems)
