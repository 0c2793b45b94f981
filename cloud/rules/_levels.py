"""The threshold levels a patient's rules judge by: what the gateway's compression must keep exactly.

Pure: from the rules as tuned for the patient (their settings applied) it takes every fixed level a
reading is compared with (a threshold rule's threshold and clear threshold, a repeating rule's
threshold, a confirmed rule's crossings) and the patient's own target ranges. Levels outside a
metric's plausible range, and metrics that are not numeric, are left out (the gateway would refuse
them); so are rules that judge averages, trends or scores (no single reading decides them).
"""

from __future__ import annotations

from collections.abc import Mapping

from cloud.rules._engine import RuleEngine
from cloud.rules._settings import PatientSettings
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.patient_thresholds import MAX_LEVELS

__all__ = ["gateway_levels", "patient_levels"]


def _add(found: dict[str, set[float]], metric: object, level: object) -> None:
    if not isinstance(metric, str) or not isinstance(level, int | float) or isinstance(level, bool):
        return
    spec = CATALOGUE.get(metric)
    if spec is None or spec.kind is not MetricKind.NUMERIC:
        return
    low, high = spec.plausible
    if low <= float(level) <= high:
        found.setdefault(metric, set()).add(float(level))


def patient_levels(engine: RuleEngine, patient: str, settings: PatientSettings | None) -> dict[str, list[float]]:
    """Metric -> sorted levels the rules judging ``patient`` (tuned by ``settings``) compare readings with.

    At most :data:`~vitals.patient_thresholds.MAX_LEVELS` per metric (the lowest ones: in practice a
    metric has a handful). Raises ValueError when ``settings`` hold an override a rule refuses.
    """
    found: dict[str, set[float]] = {}
    for rule in engine.rules_for(patient, settings or PatientSettings()):
        config = getattr(rule, "config", None)
        if config is None:
            continue
        if getattr(config, "type", "") in ("sustained_threshold", "threshold", "repeating"):
            metric = getattr(config, "metric", None)
            _add(found, metric, getattr(config, "threshold", None))
            _add(found, metric, getattr(config, "clear_threshold", None))
        for crossing in getattr(config, "crossings", ()) or ():
            _add(found, getattr(crossing, "metric", None), getattr(crossing, "threshold", None))
    for metric, target in (settings.targets.items() if settings is not None else ()):
        _add(found, metric, target.low)
        _add(found, metric, target.high)
    return {metric: sorted(levels)[:MAX_LEVELS] for metric, levels in sorted(found.items())}


def gateway_levels(engine: RuleEngine, patients: list[str],
                   settings: Mapping[str, PatientSettings]) -> dict[str, dict[str, list[float]]]:
    """Patient -> metric -> levels for the patients of one gateway (patients without levels left out).

    A patient whose settings a rule refuses keeps the levels of the rules without their settings.
    """
    levels: dict[str, dict[str, list[float]]] = {}
    for patient in patients:
        try:
            found = patient_levels(engine, patient, settings.get(patient))
        except ValueError:
            found = patient_levels(engine, patient, None)
        if found:
            levels[patient] = found
    return levels
