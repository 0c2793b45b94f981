"""Replay a recording through the rules: which alerts would a rule set raise on these samples?

Pure: :func:`parse_samples_csv` turns CSV text (``time, patient, metric, value`` and optionally
``quality``) into samples, and :func:`replay` runs them through a :class:`RuleEngine` as the ingest
would, in time order, ticking the clock every ``tick_s`` of recording time so that rules moved by
the clock (no data, missed measurements) judge the silences in it. States go through JSON between
steps, as the store keeps them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

from cloud.rules._base import AlertChange, RuleState
from cloud.rules._engine import RuleEngine, StateKey
from cloud.rules._settings import PatientSettings
from device_profiles.userfile import FileProblem, UserFileError
from vitals.catalogue import CATALOGUE
from vitals.samples import Sample, is_identifier

__all__ = ["PatientSample", "change_record", "parse_samples_csv", "replay"]

PatientSample = tuple[str, Sample]
_COLUMNS = ("time", "patient", "metric", "value")


def _time_ns(text: str) -> int:
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"time {text!r} is not a finite number")
        return round(seconds * 1e9)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} is neither ISO 8601 nor Unix seconds") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone (add Z or +01:00)")
    return round(moment.timestamp() * 1e6) * 1000


def parse_samples_csv(text: str, file: str, *, patient: str | None = None) -> list[PatientSample]:
    """Samples from CSV with a header naming ``time, patient, metric, value`` (``quality`` optional).

    ``time_ns`` (Unix ns, as ``vitalbridge sim export`` writes) may stand for ``time``; the
    ``patient`` column may be left out when ``patient`` names the one patient of the recording.
    Raises :class:`UserFileError` at the first bad row, naming the file and line.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise UserFileError(f"{file}: empty; expected a header line: time,patient,metric,value") from None
    except csv.Error as exc:
        raise UserFileError([FileProblem(file, 1, (), f"not valid CSV: {exc}")]) from None
    names = [name.strip().lower() for name in header]
    if "time" not in names and "time_ns" in names:
        names[names.index("time_ns")] = "time"
        nanoseconds = True
    else:
        nanoseconds = False
    if patient is not None and "patient" not in names:
        if not is_identifier(patient):
            raise UserFileError(f"patient {patient!r} is not a valid identifier")
        names.append("patient")
    missing = [column for column in _COLUMNS if column not in names]
    if missing:
        raise UserFileError([FileProblem(file, 1, (), f"header lacks column(s) {', '.join(missing)}; "
                                                      f"expected: time,patient,metric,value[,quality]")])
    where = {column: names.index(column) for column in (*_COLUMNS, "quality") if column in names}
    samples: list[PatientSample] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if patient is not None and len(row) < len(names):
                row = [*row, patient]
            try:
                samples.append(_row(row, where, nanoseconds))
            except (ValueError, IndexError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else f"expected {len(names)} columns, got {len(row)}"
                raise UserFileError([FileProblem(file, line, (), reason)]) from None
    except csv.Error as exc:
        raise UserFileError([FileProblem(file, reader.line_num, (), f"not valid CSV: {exc}")]) from None
    return samples


def _row(row: list[str], where: Mapping[str, int], nanoseconds: bool) -> PatientSample:
    if nanoseconds:
        text = row[where["time"]].strip()
        if not text.lstrip("-").isdigit():
            raise ValueError(f"time_ns {text!r} is not a whole number")
        time_ns = int(text)
    else:
        time_ns = _time_ns(row[where["time"]])
    patient = row[where["patient"]].strip()
    if not is_identifier(patient):
        raise ValueError(f"patient {patient!r} is not a valid identifier")
    metric = row[where["metric"]].strip()
    if metric not in CATALOGUE:
        raise ValueError(f"unknown metric {metric!r}")
    try:
        value = float(row[where["value"]])
    except ValueError:
        raise ValueError(f"value {row[where['value']]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value {row[where['value']]!r} is not a finite number")
    quality = 0
    if "quality" in where and where["quality"] < len(row) and row[where["quality"]].strip():
        text = row[where["quality"]].strip()
        if not text.isdigit():
            raise ValueError(f"quality {text!r} is not a whole number")
        quality = int(text)
    return patient, Sample(metric, time_ns, value, quality)


def replay(engine: RuleEngine, samples: Sequence[PatientSample],
           settings: Mapping[str, PatientSettings] | None = None, *, tick_s: float = 60.0) -> Iterator[AlertChange]:
    """The alert changes the engine finds in ``samples``, in the order it finds them."""
    ordered = sorted(samples, key=lambda item: item[1].time_ns)
    if not ordered:
        return
    tick_ns = max(1, int(tick_s * 1e9))
    ticking = engine.ticking
    states: dict[StateKey, RuleState] = {}
    index = 0
    step_end = (ordered[0][1].time_ns // tick_ns + 1) * tick_ns
    last_end = (ordered[-1][1].time_ns // tick_ns + 1) * tick_ns
    while step_end <= last_end:
        by_patient: dict[str, list[Sample]] = defaultdict(list)
        while index < len(ordered) and ordered[index][1].time_ns < step_end:
            patient, sample = ordered[index]
            by_patient[patient].append(sample)
            index += 1
        if by_patient:
            result = engine.evaluate(states, by_patient, settings)
            states.update({key: json.loads(json.dumps(state)) for key, state in result.states.items()})
            yield from result.changes
        if ticking:
            due = {key: state for key, state in states.items() if key[0] in ticking}
            result = engine.tick(due, step_end, settings)
            states.update({key: json.loads(json.dumps(state)) for key, state in result.states.items()})
            yield from result.changes
        if index < len(ordered) and not ticking:
            step_end = max(step_end + tick_ns, (ordered[index][1].time_ns // tick_ns + 1) * tick_ns)
        else:
            step_end += tick_ns


def _iso(time_ns: int | None) -> str | None:
    if time_ns is None:
        return None
    return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def change_record(change: AlertChange) -> dict[str, object]:
    """An alert change as a JSON-able record (times as ISO 8601 UTC)."""
    at = change.resolved_ns if change.state == "resolved" else (
        change.fired_ns if change.state == "open" else change.episode_start_ns)
    return {
        "time": _iso(at), "state": change.state, "patient": change.patient, "rule": change.rule,
        "severity": change.severity, "metric": change.metric, "message": change.message,
        "episode_start": _iso(change.episode_start_ns), "fired": _iso(change.fired_ns),
        "last": _iso(change.last_ns), "resolved": _iso(change.resolved_ns), "worst_value": change.worst_value,
        "threshold": change.threshold, "rule_version": change.rule_version, "details": change.details,
    }
