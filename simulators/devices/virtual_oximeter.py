"""A virtual BLE pulse oximeter: scenario SpO2 and pulse rate as PLX Continuous (0x2A5F) notifications.

It produces exactly the bytes a real Pulse Oximeter Service device notifies (no radio needed): the
gateway's decoder cannot tell it from hardware. Pure: the scenario run is advanced by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device_profiles.gatt.plx_continuous import PlxContinuousMeasurement
from device_profiles.gatt.pulse_oximetry import SpO2PulseRate
from device_profiles.ieee11073 import Measured
from simulators.devices.gatt_encode import encode_plx_continuous

__all__ = ["PLX_CONTINUOUS_UUID", "Notification", "VirtualPulseOximeter"]

PLX_CONTINUOUS_UUID = "00002a5f-0000-1000-8000-00805f9b34fb"

Notification = tuple[str, bytes, int]
"""``(characteristic UUID, payload, time in Unix ns)``."""


class VirtualPulseOximeter:
    """Turns a scenario run's ``spo2`` and ``pulse_rate`` into PLX Continuous notifications.

    ``run`` is a :class:`simulators.scenarios.ScenarioRun` (anything with ``advance(seconds)``
    returning a chunk with ``numerics[metric] = (times_ns, values)``). Each SpO2 reading becomes one
    notification, paired with the pulse rate at the same instant (interpolated if the scenario
    samples it at other times); values are rounded to the device resolution of 1 % and 1 /min.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.sent = 0

    def advance(self, duration_s: float) -> list[Notification]:
        """Advance the scenario by ``duration_s`` seconds; return the notifications it produced."""
        chunk = self.run.advance(duration_s)
        numerics = chunk.numerics
        if "spo2" not in numerics:
            return []
        times, spo2 = (np.asarray(a) for a in numerics["spo2"])
        rate_metric = next((m for m in ("pulse_rate", "heart_rate") if len(numerics.get(m, ((),))[0])), None)
        if rate_metric is not None:
            rate_times, rate_values = (np.asarray(a, dtype=np.float64) for a in numerics[rate_metric])
            order = np.argsort(rate_times, kind="stable")  # late readings arrive out of order
            pulse = np.interp(times.astype(np.float64), rate_times[order], rate_values[order])
        else:
            pulse = np.full(len(times), 70.0)
        notifications: list[Notification] = []
        for time_ns, saturation, rate in zip(times.tolist(), spo2.tolist(), pulse.tolist(), strict=True):
            record = PlxContinuousMeasurement(
                normal=SpO2PulseRate(
                    spo2=Measured(float(min(100, max(0, round(saturation)))), exponent=0),
                    pulse_rate=Measured(float(max(0, round(rate))), exponent=0),
                )
            )
            notifications.append((PLX_CONTINUOUS_UUID, encode_plx_continuous(record), int(time_ns)))
        self.sent += len(notifications)
        return notifications
