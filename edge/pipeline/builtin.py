"""The built-in stages and the default chain of every catalogue metric (the one list to read)."""

from __future__ import annotations

from edge.pipeline.registry import register_stage
from edge.pipeline.stages.ecg_beats import EcgBeatsStage
from edge.pipeline.stages.ecg_filter import EcgFilterStage
from edge.pipeline.stages.lead_check import LeadCheckStage
from edge.pipeline.stages.ppg_filter import PpgFilterStage
from edge.pipeline.stages.ppg_pulses import PpgPulsesStage
from edge.pipeline.stages.spike_filter import SpikeFilterStage
from edge.pipeline.stages.swinging_door import SwingingDoorStage
from edge.pipeline.stages.validate import ValidateStage
from edge.pipeline.stages.waveform_counts import WaveformCountsStage
from vitals import CATALOGUE, MetricKind

__all__ = ["BUILTIN_STAGES", "DEFAULT_CHAINS", "default_chain"]

BUILTIN_STAGES = (
    ValidateStage,
    LeadCheckStage,
    EcgFilterStage,
    PpgFilterStage,
    SpikeFilterStage,
    EcgBeatsStage,
    PpgPulsesStage,
    SwingingDoorStage,
    WaveformCountsStage,
)

for _stage in BUILTIN_STAGES:
    register_stage(_stage)

# validate -> filter -> derive -> compress, per metric.
DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "ecg": ("validate", "lead_check", "ecg_filter", "ecg_beats", "waveform_counts"),
    "ppg": ("validate", "lead_check", "ppg_filter", "ppg_pulses", "waveform_counts"),
    # Frequent readings: spikes are removed before compression.
    "heart_rate": ("validate", "spike_filter", "swinging_door"),
    "pulse_rate": ("validate", "spike_filter", "swinging_door"),
    "spo2": ("validate", "spike_filter", "swinging_door"),
    "respiratory_rate": ("validate", "spike_filter", "swinging_door"),
    # Every RR interval matters for HRV in the cloud: validated, never compressed.
    "rr_interval": ("validate",),
    # Indicators the derive stages compute every few seconds to a minute: few, and each one counts.
    "hrv_sdnn": ("validate",),
    "hrv_rmssd": ("validate",),
    "af_irregularity": ("validate",),
    "ecg_sqi": ("validate",),
    "ppg_sqi": ("validate",),
}
"""Chains that differ from the fallback: occasional readings (blood pressure, weight, temperature,
glucose) get ``validate -> swinging_door`` (a spike filter would hold a daily reading for days)."""


def default_chain(metric: str) -> tuple[str, ...]:
    """Return the default chain (stage names) for a catalogue metric."""
    if metric in DEFAULT_CHAINS:
        return DEFAULT_CHAINS[metric]
    if CATALOGUE[metric].kind is MetricKind.WAVEFORM:
        return ("validate", "lead_check", "waveform_counts")
    return ("validate", "swinging_door")
