"""The ``virtual`` transport: a simulated device in the gateway, speaking real device bytes.

Registered by the simulators' users, never by the production gateway: the demo and the virtual
home call :func:`register_virtual`, and ``vitalbridge edge run`` loads it through the
``vitalbridge.transports`` entry point only for a config that has a ``transport: virtual`` device.

The device config names the scenario in ``address``. Options:

- ``kind``: which virtual device (``pulse_oximeter``, ``heart_rate_strap``, ``bp_cuff``,
  ``thermometer``, ``weight_scale``, ``glucose_meter``, ``ecg_patch``; ``cgm`` is a glucose meter). Default: from
  the profile, ``generic.<kind>`` or else the profile's ``device_kind``.
- ``speed`` (scenario seconds per real second), ``seed``.
- ``utc_offset_s``: what the device clock is set to (local time, seconds east of UTC); set it to
  the gateway's ``utc_offset_s`` (both default to 0) so time stamps decode to the reading times.
- ``scenario_device``: the scenario device it stands for (default: the one with the device's id),
  checked against what the virtual device can carry; ``report_mismatch: false`` silences that
  warning (a virtual home announces it itself).

Bluetooth profiles get a :class:`~simulators.devices.virtual_ble.VirtualBleDevice` whose
notifications are delivered with the characteristic UUID as channel; ``generic.ecg_patch`` gets a
:class:`~simulators.devices.virtual_ecg_patch.VirtualEcgPatch` streaming the scenario's ECG. Serial profiles
(``nonin.xpod``, ``masimo.rad8``) get a virtual serial device whose bytes go, in process, through
a fresh framer of the profile, exactly as the serial transport cuts what it reads from a port;
each frame is delivered with the frame's name as channel. Not over a pty: the serial transport
stamps frames with the wall clock, while a virtual home runs many times faster than real time,
so only in process can frames carry their scenario time. (A pty end to end, in real time, is
:class:`simulators.devices.pty_serial.PtySerialDevice` with the ``serial`` transport.)

Scenario time starts at ``start_ns`` (default: now) and runs ``speed`` times faster than the wall
clock until it catches up with the clock, then in real time: a demo can replay the recent past
quickly and go on live, and no reading is ever stamped in the future. A device too slow for its
speed falls behind rather than hold up the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import Field

from device_profiles.profile import DeviceProfile
from device_profiles.serial.framing import Framer
from edge.config import DeviceConfig
from edge.transports import OPTIONS_CONFIG, DeliverFn, Payload, ReportFn, TransportRegistry, options_from
from simulators.devices.virtual_ble import BLE_DEVICE_KINDS, Notification, ScenarioSource, VirtualBleDevice
from simulators.devices.virtual_ecg_patch import ECG_PATCH_CHARACTERISTIC, ECG_PATCH_PROFILE, VirtualEcgPatch
from simulators.devices.virtual_oximeter import SERIAL_OXIMETERS, VirtualSerialDevice
from simulators.scenarios import DeviceSpec, Scenario, load_scenario
from simulators.scenarios.model import WAVEFORM_METRICS

__all__ = [
    "KIND_ALIASES",
    "VIRTUAL_KINDS",
    "FramedSerialDevice",
    "VirtualDevice",
    "VirtualDeviceSpec",
    "VirtualOptions",
    "VirtualTransport",
    "VirtualTransportFactory",
    "metric_warning",
    "register_virtual",
    "virtual_device_spec",
    "virtual_kind",
]

log = logging.getLogger(__name__)

_TICK_S = 0.25

KIND_ALIASES = {"cgm": "glucose_meter"}
"""Scenario device kinds that another virtual device kind stands for."""

_PROFILE_DEVICE_KINDS = {"blood_pressure_monitor": "bp_cuff", "heart_rate_monitor": "heart_rate_strap",
                         "ecg_monitor": "ecg_patch"}

VIRTUAL_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{kind: (row.profile, row.carries) for kind, row in BLE_DEVICE_KINDS.items()},
    "ecg_patch": (ECG_PATCH_PROFILE, ("ecg",)),
}
"""Every virtual device kind -> (its generic profile, the scenario metrics it carries)."""


class VirtualDevice(Protocol):
    """What the transport drives: scenario steps in, ``(channel, payload, time ns)`` out."""

    @property
    def run(self) -> ScenarioSource | None:
        """The scenario run it advances."""
        ...

    def advance(self, duration_s: float) -> list[Notification]:
        """Advance the scenario by ``duration_s`` seconds; return what the gateway receives."""
        ...


class FramedSerialDevice:
    """A virtual serial device seen through its profile's framer: the bytes it writes become
    ``(frame name, frame payload, time ns)``, a frame taking the time of the write completing it."""

    def __init__(self, device: VirtualSerialDevice, framer: Framer) -> None:
        self.device = device
        self.framer = framer

    @property
    def run(self) -> ScenarioSource | None:
        """The scenario run the serial device advances."""
        return self.device.run

    def advance(self, duration_s: float) -> list[Notification]:
        """Advance the scenario; return the whole frames the device's bytes make."""
        return [(frame.name, frame.payload, time_ns)
                for data, time_ns in self.device.advance(duration_s)
                for frame in self.framer.feed(data)]


@dataclass(frozen=True)
class VirtualDeviceSpec:
    """A virtual device chosen for a profile: its kind, the scenario metrics it carries, the
    waveforms it uses when the scenario has them, and how to build it
    (``make(run, utc_offset_s)``)."""

    kind: str
    profile: str
    carries: tuple[str, ...]
    waveforms: tuple[str, ...]
    make: Callable[[ScenarioSource, int], VirtualDevice]


def virtual_kind(word: str) -> str:
    """The virtual device kind for a scenario device kind (``cgm`` -> ``glucose_meter``)."""
    return KIND_ALIASES.get(word, word)


def _profile_kind(profile: DeviceProfile) -> str | None:
    vendor, _, model = profile.id.partition(".")
    if vendor == "generic" and model in VIRTUAL_KINDS:
        return model
    if profile.device_kind is None:
        return None
    return virtual_kind(_PROFILE_DEVICE_KINDS.get(profile.device_kind, profile.device_kind))


def virtual_device_spec(profile: DeviceProfile, kind: str | None = None) -> VirtualDeviceSpec:
    """The virtual device that speaks ``profile`` as ``kind`` (default: the profile's kind).

    Raises ``ValueError`` naming the problem: no virtual device of that kind, a serial profile
    without a virtual device, or a Bluetooth profile lacking the characteristic the kind notifies.
    """
    wanted = virtual_kind(kind) if kind is not None else _profile_kind(profile)
    if profile.serial is not None:
        serial = SERIAL_OXIMETERS.get(profile.id)
        if serial is None:
            raise ValueError(f"no virtual serial device speaks {profile.id}; "
                             f"virtual serial devices: {', '.join(SERIAL_OXIMETERS)}")
        if wanted not in (None, "pulse_oximeter"):
            raise ValueError(f"profile {profile.id} is a pulse oximeter, not a {wanted}")
        framer_profile = profile

        def make_serial(run: ScenarioSource, utc_offset_s: int) -> VirtualDevice:
            return FramedSerialDevice(serial(run, utc_offset_s=utc_offset_s), framer_profile.make_framer())

        sample = serial(None)
        return VirtualDeviceSpec("pulse_oximeter", profile.id, sample.carries, sample.waveforms, make_serial)
    if wanted == "ecg_patch":
        if profile.characteristic(ECG_PATCH_CHARACTERISTIC) is None:
            raise ValueError(f"profile {profile.id} has no ECG stream characteristic {ECG_PATCH_CHARACTERISTIC} "
                             f"that a virtual ecg_patch notifies")

        def make_patch(run: ScenarioSource, utc_offset_s: int) -> VirtualDevice:
            return VirtualEcgPatch(run)  # its samples carry no clock time: the offset does not matter

        return VirtualDeviceSpec("ecg_patch", profile.id, ("ecg",), ("ecg",), make_patch)
    if wanted is None or wanted not in BLE_DEVICE_KINDS:
        raise ValueError(f"no virtual device of kind {wanted or '(none given)'!r} for profile {profile.id}; "
                         f"kinds: {', '.join(VIRTUAL_KINDS)} (set options.kind)")
    row = BLE_DEVICE_KINDS[wanted]
    if profile.characteristic(row.characteristic) is None:
        raise ValueError(f"profile {profile.id} has no characteristic {row.characteristic[4:8]} "
                         f"that a virtual {wanted} notifies")

    def make_ble(run: ScenarioSource, utc_offset_s: int) -> VirtualDevice:
        return VirtualBleDevice(row, run, utc_offset_s=utc_offset_s)

    return VirtualDeviceSpec(wanted, profile.id, row.carries, ("ecg",) if row.beats else (), make_ble)


def metric_warning(scenario: Scenario, spec: DeviceSpec | None, virtual: VirtualDeviceSpec,
                   device_id: str) -> str | None:
    """A warning line when the scenario device's metrics are not all carried by ``virtual``.

    Without a scenario device, warns when the scenario has none of the metrics it carries.
    """
    if spec is not None:
        missing = [m for m in spec.metrics if m not in virtual.carries]
        if not missing:
            return None
        if len(missing) == len(spec.metrics):
            return (f"warning: device {device_id}: the virtual {virtual.kind} ({virtual.profile}) carries "
                    f"{', '.join(virtual.carries)}, none of {spec.id}'s {', '.join(spec.metrics)}; "
                    f"it sends only what other scenario devices measure of those")
        return (f"warning: device {device_id}: the virtual {virtual.kind} ({virtual.profile}) sends "
                f"{', '.join(m for m in spec.metrics if m in virtual.carries)}; not {', '.join(missing)}")
    measured = {m for device in scenario.devices for m in device.metrics}
    if measured.isdisjoint(virtual.carries):
        return (f"warning: device {device_id}: scenario {scenario.name} measures none of "
                f"{', '.join(virtual.carries)}; the virtual {virtual.kind} will send nothing")
    return None


class VirtualTransport:
    """Drives a virtual device in (scaled) real time and delivers what it sends."""

    def __init__(self, device: VirtualDevice, *, speed: float, clock_ns: Callable[[], int],
                 start_ns: int) -> None:
        self.device = device
        self.speed = speed
        self.clock_ns = clock_ns
        self.start_ns = start_ns

    async def run(self, deliver: DeliverFn, report: ReportFn) -> None:
        """Deliver payloads until cancelled, never ahead of the (scaled) clock."""
        report("attached", {"transport": "virtual"})
        loop = asyncio.get_running_loop()
        began = loop.time()
        simulated_s = 0.0
        try:
            while True:
                await asyncio.sleep(_TICK_S)
                live_s = (self.clock_ns() - self.start_ns) / 1e9
                target_s = min((loop.time() - began) * self.speed, live_s)
                # At most one tick's worth of scenario per step, then the loop gets a turn: when the
                # device cannot keep up (a serial oximeter at thousands of times real time), the run
                # falls behind but still stops on time.
                step = min(target_s - simulated_s, _TICK_S * self.speed)
                if step <= 0:
                    continue
                for channel, data, time_ns in self.device.advance(step):
                    deliver(Payload(channel, data, time_ns))
                simulated_s += step
        finally:
            report("lost", {"transport": "virtual", "reason": "stopped"})


@dataclass(frozen=True)
class VirtualOptions:
    """A virtual device's ``options`` (see the module docstring); unknown keys are mistakes."""

    __pydantic_config__ = OPTIONS_CONFIG

    kind: Annotated[str, Field(strict=True, min_length=1)] | None = None
    speed: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False, strict=True)] | None = None
    seed: Annotated[int, Field(ge=0, strict=True)] | None = None
    utc_offset_s: Annotated[int, Field(ge=-14 * 3600, le=14 * 3600, strict=True)] = 0
    scenario_device: Annotated[str, Field(strict=True, min_length=1)] | None = None
    report_mismatch: Annotated[bool, Field(strict=True)] = True


class VirtualTransportFactory:
    """``factory(device_config, profile, clock_ns)`` for the transport registry.

    ``ValueError`` (naming the device) for a configuration no virtual device fits; a scenario
    device whose metrics the virtual device cannot carry only logs a warning.
    """

    def __init__(self, *, start_ns: int | None = None, speed: float | None = None) -> None:
        self.start_ns = start_ns
        self.speed = speed

    def __call__(self, device: DeviceConfig, profile: Any, clock_ns: Callable[[], int]) -> VirtualTransport:
        try:
            options = options_from(VirtualOptions, device.options)
        except ValueError as error:
            raise ValueError(f"device {device.id}: options.{error}") from None
        speed = options.speed or self.speed or 1.0
        seed = options.seed if options.seed is not None else zlib.crc32(device.id.encode())
        utc_offset_s = options.utc_offset_s
        try:
            virtual = virtual_device_spec(profile, options.kind)
        except ValueError as error:
            raise ValueError(f"device {device.id}: {error}") from None
        if not device.address:
            raise ValueError(f"device {device.id}: a virtual device needs a scenario as address "
                             f"(see `vitalbridge sim list`)")
        scenario = load_scenario(device.address)
        spec_id = options.scenario_device or device.id
        spec = next((d for d in scenario.devices if d.id == spec_id), None)
        warning = metric_warning(scenario, spec, virtual, device.id)
        if warning is not None and options.report_mismatch:
            log.warning("%s", warning.removeprefix("warning: "))
        scenario_waves = {m for d in scenario.devices for m in d.metrics if m in WAVEFORM_METRICS}
        start_ns = self.start_ns if self.start_ns is not None else clock_ns()
        run = scenario.start(start_ns, seed, waveforms=bool(scenario_waves.intersection(virtual.waveforms)))
        return VirtualTransport(virtual.make(run, utc_offset_s), speed=speed, clock_ns=clock_ns, start_ns=start_ns)


def register_virtual(registry: TransportRegistry, *, start_ns: int | None = None, speed: float | None = None) -> None:
    """Add the ``virtual`` transport to ``registry`` (the ``vitalbridge.transports`` entry point's object).

    ``start_ns`` and ``speed``: see :class:`VirtualTransportFactory`.
    """
    registry.add("virtual", VirtualTransportFactory(start_ns=start_ns, speed=speed), options=VirtualOptions)
