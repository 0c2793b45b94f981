"""The metric catalogue: every vital sign VitalBridge knows, with its codes and limits.

Each metric carries its UCUM unit (the one unit it travels and is stored in), its LOINC code,
its IEEE 11073-10101 MDC code (partition * 2**16 + term code) where one exists, the range a
living patient can plausibly show, the resolution the devices report it with, and the fastest
plausible change per second (used by edge validation).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CATALOGUE", "Metric", "MetricKind", "UnknownMetricError", "get_metric"]


class MetricKind(enum.Enum):
    """Whether a metric is a sampled waveform or a sequence of discrete readings."""

    NUMERIC = "numeric"
    WAVEFORM = "waveform"


@dataclass(frozen=True, slots=True)
class Metric:
    """One vital sign in the catalogue.

    ``plausible`` is the closed range ``(low, high)`` outside which a value is physically impossible
    for a living patient (or for the sensor), in ``unit``. ``resolution`` is the smallest step the
    catalogue keeps, in ``unit``. ``max_rate`` is the largest plausible change per second, in
    ``unit``/s, or ``None`` where a jump is legitimate (waveforms, intervals). ``max_hz`` is the
    fastest rate, in samples per second, at which any device legitimately reports the metric: a
    stream denser than that is refused by the cloud (it would amplify one message into many points).
    """

    name: str
    label: str
    unit: str
    kind: MetricKind
    loinc: str | None
    mdc_code: int | None
    mdc_ref: str | None
    plausible: tuple[float, float]
    resolution: float
    max_rate: float | None = None
    max_hz: float = 10.0

    def is_plausible(self, value: float) -> bool:
        """Return True when ``value`` (in ``unit``) lies within the plausible range."""
        low, high = self.plausible
        return low <= value <= high


def _mdc(partition: int, term: int) -> int:
    # IEEE 11073-10101 context-free code: the partition in the high 16 bits.
    return (partition << 16) | term


_SCADA = 2  # MDC partition for physiological measurements (MDC_PART_SCADA)

_METRICS = (
    Metric("heart_rate", "Heart rate", "/min", MetricKind.NUMERIC, "8867-4",
           _mdc(_SCADA, 16770), "MDC_ECG_HEART_RATE", (20.0, 300.0), 1.0, 60.0),
    Metric("pulse_rate", "Pulse rate", "/min", MetricKind.NUMERIC, "8889-8",
           _mdc(_SCADA, 18458), "MDC_PULS_OXIM_PULS_RATE", (20.0, 300.0), 1.0, 60.0),
    Metric("spo2", "Oxygen saturation (SpO2)", "%", MetricKind.NUMERIC, "59408-5",
           _mdc(_SCADA, 19384), "MDC_PULS_OXIM_SAT_O2", (40.0, 100.0), 1.0, 10.0),
    Metric("bp_systolic", "Systolic blood pressure", "mm[Hg]", MetricKind.NUMERIC, "8480-6",
           _mdc(_SCADA, 18949), "MDC_PRESS_BLD_NONINV_SYS", (40.0, 300.0), 1.0, None),
    Metric("bp_diastolic", "Diastolic blood pressure", "mm[Hg]", MetricKind.NUMERIC, "8462-4",
           _mdc(_SCADA, 18950), "MDC_PRESS_BLD_NONINV_DIA", (20.0, 200.0), 1.0, None),
    Metric("bp_mean", "Mean arterial pressure", "mm[Hg]", MetricKind.NUMERIC, "8478-0",
           _mdc(_SCADA, 18951), "MDC_PRESS_BLD_NONINV_MEAN", (30.0, 250.0), 1.0, None),
    Metric("body_temperature", "Body temperature", "Cel", MetricKind.NUMERIC, "8310-5",
           _mdc(_SCADA, 19292), "MDC_TEMP_BODY", (30.0, 45.0), 0.1, 0.05),
    Metric("respiratory_rate", "Respiratory rate", "/min", MetricKind.NUMERIC, "9279-1",
           _mdc(_SCADA, 20490), "MDC_RESP_RATE", (2.0, 80.0), 1.0, 10.0),
    Metric("body_weight", "Body weight", "kg", MetricKind.NUMERIC, "29463-7",
           _mdc(_SCADA, 57664), "MDC_MASS_BODY_ACTUAL", (0.5, 400.0), 0.1, None),
    Metric("blood_glucose", "Blood glucose", "mmol/L", MetricKind.NUMERIC, "15074-8",
           _mdc(_SCADA, 28948), "MDC_CONC_GLU_GEN", (0.5, 40.0), 0.1, 0.1),
    Metric("rr_interval", "R-R interval", "ms", MetricKind.NUMERIC, "8637-1",
           _mdc(_SCADA, 16168), "MDC_ECG_TIME_PD_RR_GL", (200.0, 3000.0), 1.0, None),
    Metric("perfusion_index", "Perfusion index (pulse oximetry)", "%", MetricKind.NUMERIC, "61006-3",
           _mdc(_SCADA, 19376), "MDC_PULS_OXIM_PERF_REL", (0.0, 100.0), 0.01, None),
    # Derived on the gateway from the ECG's RR intervals over a rolling window (edge stage ecg_beats).
    # No MDC term for these: the nomenclature codes RR intervals, not statistics over them.
    Metric("hrv_sdnn", "Heart rate variability (SDNN)", "ms", MetricKind.NUMERIC, "80404-7",
           None, None, (0.0, 1500.0), 0.1, None, 1.0),
    # No LOINC term for RMSSD.
    Metric("hrv_rmssd", "Heart rate variability (RMSSD)", "ms", MetricKind.NUMERIC, None,
           None, None, (0.0, 3000.0), 0.1, None, 1.0),
    # Median successive RR difference over the median RR: a screening indicator of atrial
    # fibrillation (above about 0.08), no LOINC or MDC term.
    Metric("af_irregularity", "RR irregularity (AF indicator)", "1", MetricKind.NUMERIC, None,
           None, None, (0.0, 15.0), 0.001, None, 1.0),
    # Signal quality indices per window of the waveform (0 unusable .. 1 clean), computed on the
    # gateway. MDC_SAT_O2_QUAL names an oximeter's own quality figure, not this index: no code.
    Metric("ecg_sqi", "ECG signal quality index", "1", MetricKind.NUMERIC, None,
           None, None, (0.0, 1.0), 0.01, None, 1.0),
    Metric("ppg_sqi", "PPG signal quality index", "1", MetricKind.NUMERIC, None,
           None, None, (0.0, 1.0), 0.01, None, 1.0),
    Metric("ecg", "ECG (lead II)", "mV", MetricKind.WAVEFORM, None,
           _mdc(_SCADA, 258), "MDC_ECG_ELEC_POTL_II", (-10.0, 10.0), 0.001, None, 2000.0),
    Metric("ppg", "Photoplethysmogram", "1", MetricKind.WAVEFORM, None,
           _mdc(_SCADA, 19380), "MDC_PULS_OXIM_PLETH", (-1.0e6, 1.0e6), 1.0, None, 1000.0),
)

CATALOGUE: dict[str, Metric] = {metric.name: metric for metric in _METRICS}
"""Every metric by name. The name is the wire name, the InfluxDB tag value and the config key."""


class UnknownMetricError(KeyError):
    """Raised by :func:`get_metric` for a name that is not in the catalogue."""


def get_metric(name: str) -> Metric:
    """Return the catalogue entry called ``name``, or raise :class:`UnknownMetricError`."""
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(sorted(CATALOGUE))
        raise UnknownMetricError(f"unknown metric {name!r}; known metrics: {known}") from None
