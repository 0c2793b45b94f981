"""What the web app shows, computed from values (no I/O, no clock): the doctor's worklist order, the patient
page's summaries (blood pressure, glucose, weight, adherence) and the family's "today" judgements."""

from cloud.views._care_plan import Adherence, PlannedWindow, adherence, due_on, planned_windows
from cloud.views._clinical import (
    GLUCOSE_BANDS,
    MG_DL_PER_MMOL_L,
    AgpBin,
    BpAverage,
    BpSummary,
    WeightChange,
    ambulatory_glucose_profile,
    blood_pressure_summary,
    glucose_band,
    mmol_to_mg_dl,
    time_in_ranges,
    weight_change,
)
from cloud.views._downsample import BUCKET_INTERVALS_S, bucket_interval_s
from cloud.views._ranking import SEVERITY_ORDER, WorklistFacts, attention_key, rank_worklist, top_severity
from cloud.views._status import (
    NEWS2_METRICS,
    REFERENCE_RANGES,
    Latest,
    ReadingStatus,
    fresh,
    news2_from_values,
    reading_range,
    reading_status,
    silent_since_ns,
)

__all__ = [
    "BUCKET_INTERVALS_S",
    "GLUCOSE_BANDS",
    "MG_DL_PER_MMOL_L",
    "NEWS2_METRICS",
    "REFERENCE_RANGES",
    "SEVERITY_ORDER",
    "Adherence",
    "AgpBin",
    "BpAverage",
    "BpSummary",
    "Latest",
    "PlannedWindow",
    "ReadingStatus",
    "WeightChange",
    "WorklistFacts",
    "adherence",
    "ambulatory_glucose_profile",
    "attention_key",
    "blood_pressure_summary",
    "bucket_interval_s",
    "due_on",
    "fresh",
    "glucose_band",
    "mmol_to_mg_dl",
    "news2_from_values",
    "planned_windows",
    "rank_worklist",
    "reading_range",
    "reading_status",
    "silent_since_ns",
    "time_in_ranges",
    "top_severity",
    "weight_change",
]
