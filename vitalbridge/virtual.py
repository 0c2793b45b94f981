"""The ``virtual`` transport: a simulated device in the gateway, speaking real device bytes.

The device config names the scenario in ``address`` and may set ``options.speed`` (scenario
seconds per real second) and ``options.seed``. Scenario time starts at ``start_ns`` (default: now)
and runs ``speed`` times faster than the wall clock until it catches up with the clock, then in
real time: a demo can replay the recent past quickly and go on live, and no reading is ever
stamped in the future.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any

from edge.config import DeviceConfig
from edge.transports import DeliverFn, Payload, ReportFn
from simulators.devices.virtual_oximeter import VirtualPulseOximeter
from simulators.scenarios import load_scenario

__all__ = ["VirtualTransport", "VirtualTransportFactory"]

log = logging.getLogger(__name__)

_TICK_S = 0.25


class VirtualTransport:
    """Drives a :class:`VirtualPulseOximeter` in (scaled) real time and delivers its notifications."""

    def __init__(self, device: VirtualPulseOximeter, *, speed: float, clock_ns: Callable[[], int],
                 start_ns: int) -> None:
        self.device = device
        self.speed = speed
        self.clock_ns = clock_ns
        self.start_ns = start_ns

    async def run(self, deliver: DeliverFn, report: ReportFn) -> None:
        """Deliver notifications until cancelled, never ahead of the (scaled) clock."""
        report("attached", {"transport": "virtual"})
        loop = asyncio.get_running_loop()
        began = loop.time()
        simulated_s = 0.0
        try:
            while True:
                await asyncio.sleep(_TICK_S)
                live_s = (self.clock_ns() - self.start_ns) / 1e9
                target_s = min((loop.time() - began) * self.speed, live_s)
                step = target_s - simulated_s
                if step <= 0:
                    continue
                for channel, data, time_ns in self.device.advance(step):
                    deliver(Payload(channel, data, time_ns))
                simulated_s = target_s
        finally:
            report("lost", {"transport": "virtual", "reason": "stopped"})


class VirtualTransportFactory:
    """``factory(device_config, profile, clock_ns)`` for the transport registry."""

    def __init__(self, *, start_ns: int | None = None, speed: float | None = None) -> None:
        self.start_ns = start_ns
        self.speed = speed

    def __call__(self, device: DeviceConfig, profile: Any, clock_ns: Callable[[], int]) -> VirtualTransport:
        options = device.options
        speed = float(options.get("speed", self.speed or 1.0))
        if speed <= 0:
            raise ValueError(f"device {device.id}: options.speed must be positive")
        seed = int(options.get("seed", zlib.crc32(device.id.encode())))
        start_ns = self.start_ns if self.start_ns is not None else clock_ns()
        scenario = load_scenario(device.address)
        run = scenario.start(start_ns, seed)
        return VirtualTransport(VirtualPulseOximeter(run), speed=speed, clock_ns=clock_ns, start_ns=start_ns)
