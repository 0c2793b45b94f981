"""Bulk export: everything of one patient over a time range, streamed as a transaction Bundle or as NDJSON.

A transaction Bundle ``PUT``s every resource under its own deterministic id, so loading the same export
twice (or two overlapping exports) into a FHIR server leaves one copy of each resource.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from cloud.fhir._observation import observations_from_values, waveform_observation
from cloud.fhir._resources import (
    alert_issue,
    device_resource,
    gateway_resource,
    patient_resource,
    transaction_entry,
)
from cloud.fhir._search import TimeRange
from cloud.fhir._source import FhirSource
from cloud.registry import Device, Patient
from vitals.catalogue import CATALOGUE, MetricKind

__all__ = ["ExportFormat", "bundle_chunks", "export_resources", "ndjson_chunks", "write_export"]

ExportFormat = Literal["bundle", "ndjson"]

_NUMERIC = sorted(name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.NUMERIC)
_WAVEFORM = sorted(name for name, metric in CATALOGUE.items() if metric.kind is MetricKind.WAVEFORM)


def _dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


async def export_resources(source: FhirSource, patient: Patient, span: TimeRange, *,
                           waveforms: bool = False) -> AsyncIterator[dict[str, Any]]:
    """The patient, their gateways and devices, every Observation in ``span`` and their alerts, one by one.

    Waveforms (ECG, PPG) only with ``waveforms``: a week of ECG is tens of millions of samples.
    A device that sent values but is not registered gets a minimal Device, so every reference resolves.
    """
    yield patient_resource(patient)
    devices = await source.devices([patient.id])
    for gateway in await source.gateways(d.gateway for d in devices if d.gateway):
        yield gateway_resource(gateway)
    known = {device.id for device in devices}
    for device in devices:
        yield device_resource(device)
    unknown: set[str] = set()
    async for page in source.numeric_values(patient.id, _NUMERIC, span):
        unknown.update(value.device for value in page if value.device not in known)
        for observation in observations_from_values(page):
            yield observation
    if waveforms:
        start = span.start_ns
        while True:
            windows, next_ns = await source.waveform_windows(patient.id, _WAVEFORM, TimeRange(start, span.end_ns), 10)
            for window in windows:
                if window.device not in known:
                    unknown.add(window.device)
                yield waveform_observation(window)
            if next_ns is None:
                break
            start = next_ns
    for device_id in sorted(unknown):
        yield device_resource(Device(device_id, patient.id))
    for alert in await source.alerts(patient.id, span):
        yield alert_issue(alert)


async def bundle_chunks(resources: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """A transaction Bundle of ``resources``, as text pieces (one entry per piece)."""
    yield '{"resourceType":"Bundle","type":"transaction","entry":['
    first = True
    async for resource in resources:
        yield ("" if first else ",\n") + _dumps(transaction_entry(resource))
        first = False
    yield "]}\n"


async def ndjson_chunks(resources: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """``resources`` as NDJSON: one resource per line."""
    async for resource in resources:
        yield _dumps(resource) + "\n"


async def write_export(source: FhirSource, patient: Patient, span: TimeRange, out: Path, fmt: ExportFormat, *,
                       waveforms: bool = False) -> dict[str, int]:
    """Write the export to ``out``: one Bundle file, or (``ndjson``) a directory with one ``Type.ndjson`` file
    per resource type, as the FHIR Bulk Data format has it. Returns how many resources of each type."""
    counts: dict[str, int] = {}

    async def counted() -> AsyncIterator[dict[str, Any]]:
        async for resource in export_resources(source, patient, span, waveforms=waveforms):
            counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
            yield resource

    # Written beside the target and renamed at the end: a failed export leaves no half file to load.
    if fmt == "bundle":
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as file:
                async for chunk in bundle_chunks(counted()):
                    file.write(chunk)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return counts
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    done = False
    try:
        async for resource in counted():
            kind = resource["resourceType"]
            if kind not in files:
                files[kind] = (out / f"{kind}.ndjson.partial").open("w", encoding="utf-8")
            files[kind].write(_dumps(resource) + "\n")
        done = True
    finally:
        for kind, file in files.items():
            file.close()
            partial = out / f"{kind}.ndjson.partial"
            if done:
                partial.replace(out / f"{kind}.ndjson")
            else:
                partial.unlink(missing_ok=True)
    return counts
