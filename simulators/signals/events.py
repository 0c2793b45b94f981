"""Ground-truth event windows and the episode envelopes that drive them.

An :class:`Event` is what a detector or rule is scored against: a kind ("af", "hypoxia", "fever",
"weight_gain", "hypoglycaemia", ...) and a window in seconds from the start of the simulation.
An :class:`Episode` is how a scenario shapes a physiological change in time: a trapezoid that rises
over ``ramp_s``, holds ``magnitude`` and falls back over ``ramp_s`` before ``start_s + duration_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["Episode", "Event"]

FloatArray = npt.NDArray[np.float64]


class Event(NamedTuple):
    """A ground-truth window: ``kind`` holds from ``start_s`` to ``end_s`` (seconds from start).

    Being a tuple, it compares equal to ``("af", 10.0, 70.0)``.
    """

    kind: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Episode:
    """A trapezoid envelope: 0 before ``start_s``, ``magnitude`` on the plateau, 0 after the window.

    Times in seconds from the start of the simulation; ``ramp_s`` is clamped to half the duration.
    ``magnitude`` is in the unit of whatever the episode shifts (bpm, % SpO2, degC, kg, ...).
    """

    start_s: float
    duration_s: float
    magnitude: float = 1.0
    ramp_s: float = 0.0

    @property
    def end_s(self) -> float:
        """End of the window, seconds."""
        return self.start_s + self.duration_s

    def _ramp(self) -> float:
        return min(max(self.ramp_s, 0.0), self.duration_s / 2.0)

    def value(self, t_s: FloatArray) -> FloatArray:
        """Envelope value at times ``t_s`` (seconds), in the unit of ``magnitude``."""
        t = np.asarray(t_s, dtype=np.float64)
        r = self._ramp()
        if r <= 0.0:
            shape = ((t >= self.start_s) & (t < self.end_s)).astype(np.float64)
        else:
            rise = np.clip((t - self.start_s) / r, 0.0, 1.0)
            fall = np.clip((self.end_s - t) / r, 0.0, 1.0)
            shape = np.minimum(rise, fall)
        return self.magnitude * shape

    def integral(self, t_s: FloatArray) -> FloatArray:
        """Integral of the envelope from 0 to ``t_s`` (unit of ``magnitude`` times seconds)."""
        t = np.asarray(t_s, dtype=np.float64)
        r = self._ramp()
        if r <= 0.0:
            return self.magnitude * np.clip(t - self.start_s, 0.0, self.duration_s)

        def q(x: FloatArray) -> FloatArray:
            # Integral of the unit ramp max(x, 0): the trapezoid is a sum of four shifted ramps.
            pos = np.maximum(x, 0.0)
            return 0.5 * pos * pos

        s, d = self.start_s, self.duration_s
        area = q(t - s) - q(t - s - r) - q(t - s - d + r) + q(t - s - d)
        return self.magnitude * area / r
