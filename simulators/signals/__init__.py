"""Physiological signal models with ground truth: ECG, PPG, slow vitals and imperfections.

Modules: :mod:`~simulators.signals.ecg`, :mod:`~simulators.signals.ppg`,
:mod:`~simulators.signals.numerics` (SpO2, blood pressure, temperature, weight, glucose, rates),
:mod:`~simulators.signals.noise` (imperfections), :mod:`~simulators.signals.rhythm` (beats),
:mod:`~simulators.signals.events` (ground-truth windows).
"""

from simulators.signals.ecg import EcgSimulation, simulate_ecg
from simulators.signals.events import Episode, Event
from simulators.signals.numerics import NumericSeries
from simulators.signals.ppg import PpgSimulation, simulate_ppg

__all__ = [
    "EcgSimulation",
    "Episode",
    "Event",
    "NumericSeries",
    "PpgSimulation",
    "simulate_ecg",
    "simulate_ppg",
]
