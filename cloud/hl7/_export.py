"""Stream stored observations from InfluxDB to an MLLP receiver as ``ORU^R01`` (the ``export-hl7`` command).

The range is read an hour at a time (bounded memory however long it is), each device's values
cut into reports of at most ``chunk`` observations, sent one after the other and each checked
against its ACK. Control ids are a function of the report, so exporting a range twice sends
messages a receiver recognises as repeats.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from cloud.hl7._build import (
    DEFAULT_HEADER,
    MessageHeader,
    ObservationReport,
    build_oru_r01,
    export_control_id,
    format_value,
)
from cloud.hl7._codes import numeric_metrics
from cloud.hl7._mllp import Hl7SendError, MllpClient
from cloud.timeseries import NUMERIC_MEASUREMENT, InfluxV1Client
from vitals.samples import Sample

__all__ = ["ExportResult", "export_observations"]

_HOUR_NS = 3600 * 1_000_000_000


@dataclass
class ExportResult:
    """What an export did: messages and observations sent and acknowledged, and the refusals with reasons."""

    messages: int = 0
    observations: int = 0
    acknowledged: int = 0
    acknowledged_observations: int = 0
    refused: list[str] = field(default_factory=list)
    aborted: str = ""
    """Why the export stopped early (the receiver could not be reached), or empty."""


async def _window(influx: InfluxV1Client, patient: str, start_ns: int, end_ns: int) -> dict[str, list[Sample]]:
    """The patient's numeric values with ``start_ns <= time < end_ns``, by device, oldest first."""
    statement = (f'SELECT "value", "metric", "device" FROM "{NUMERIC_MEASUREMENT}" WHERE "patient" = $patient '
                 f"AND time >= {int(start_ns)} AND time < {int(end_ns)} ORDER BY time ASC")
    series = await influx.query(statement, {"patient": patient})
    by_device: dict[str, list[Sample]] = defaultdict(list)
    known = set(numeric_metrics())
    for row in series[0]["values"] if series else []:
        time_ns, value, metric, device = row[0], row[1], row[2], row[3]
        if metric in known and value is not None:
            by_device[str(device)].append(Sample(str(metric), int(time_ns), float(value)))
    return by_device


async def export_observations(influx: InfluxV1Client, client: MllpClient, patient: str, start_ns: int, end_ns: int,
                              *, created_ns: Callable[[], int], header: MessageHeader = DEFAULT_HEADER,
                              chunk: int = 500, attempts: int = 5, retry_s: float = 1.0,
                              window_ns: int = _HOUR_NS) -> ExportResult:
    """Send ``patient``'s observations with ``start_ns <= time <= end_ns``; returns the counts.

    A report the receiver cannot take now (no connection, no ACK, AE/CE) is tried ``attempts``
    times with jittered backoff; one it refuses (AR/CR), or that still fails, is counted in
    ``refused`` with the reason and the export goes on; a receiver that cannot be reached at all
    stops the export (``aborted``). Raises ``InfluxError`` when InfluxDB fails.
    """
    result = ExportResult()
    at = start_ns
    while at <= end_ns and not result.aborted:
        until = min(at + window_ns, end_ns + 1)
        for device, samples in sorted((await _window(influx, patient, at, until)).items()):
            sendable = [s for s in samples if format_value(s.value) is not None]
            for first in range(0, len(sendable), chunk):
                part = sendable[first:first + chunk]
                control_id = export_control_id(patient, device, part[0].time_ns, part[-1].time_ns, len(part))
                report = ObservationReport(control_id, created_ns(), patient, "", device, control_id, part)
                result.messages += 1
                result.observations += len(part)
                error = await _send(client, build_oru_r01(report, header), control_id, attempts, retry_s)
                if error is None:
                    result.acknowledged += 1
                    result.acknowledged_observations += len(part)
                elif error.code:
                    result.refused.append(f"{control_id}: {error}")
                else:
                    result.aborted = str(error)
                    return result
        at = until
    return result


async def _send(client: MllpClient, text: str, control_id: str, attempts: int,
                retry_s: float) -> Hl7SendError | None:
    """None once acknowledged, else the last error."""
    for attempt in range(1, attempts + 1):
        try:
            await client.send(text, control_id)
            return None
        except Hl7SendError as exc:
            if exc.permanent or attempt == attempts:
                return exc
            await asyncio.sleep(retry_s * 2 ** (attempt - 1) * (0.5 + random.random()))
    return Hl7SendError("not sent")  # pragma: no cover - the loop returns
