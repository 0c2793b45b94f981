"""Decode a profile's example frames and compare the whole result with what the profile expects."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from device_profiles._yamlmarks import path_text
from device_profiles.errors import DecodeError
from device_profiles.profile import DeviceProfile, Example, ProfileProblem
from device_profiles.registry import DecodeContext, DecodeResult, DecoderRegistry
from vitals.samples import Sample

__all__ = ["check_examples", "decode_example"]


def decode_example(profile: DeviceProfile, example: Example, registry: DecoderRegistry) -> tuple[DecodeResult, int]:
    """Decode one example; return the merged result and the bytes the framer discarded.

    A BLE example (or a serial example naming a frame) is one payload; any other serial example
    is wire bytes, cut into frames by a fresh framer first. Raises ``DecodeError`` or ``KeyError``.
    """
    context = DecodeContext(example.received_ns, example.utc_offset_s)
    if example.characteristic is not None:
        return profile.decoder_for(example.characteristic, registry)(example.payload, context), 0
    framer = profile.make_framer()
    samples: list[Sample] = []
    status: dict[str, Any] = {}
    notes: list[str] = []
    for frame in framer.feed(example.payload):
        result = profile.decoder_for(frame.name, registry)(frame.payload, context)
        samples.extend(result.samples)
        status.update(result.status)
        notes.extend(result.notes)
    return DecodeResult(tuple(samples), status, tuple(notes)), framer.discarded_bytes


def _expected_samples(example: Example) -> list[dict[str, Any]]:
    expanded: list[dict[str, Any]] = []
    for item in example.expect.get("samples", ()):
        values = item["values"] if "values" in item else [item["value"]]
        for value in values:
            expanded.append({**item, "value": value})
    return expanded


def _fits(actual: Sample, wanted: Mapping[str, Any], received_ns: int) -> bool:
    if actual.metric != wanted["metric"] or actual.quality != int(wanted.get("quality", 0)):
        return False
    if not math.isclose(actual.value, float(wanted["value"]), rel_tol=1e-9, abs_tol=1e-9):
        return False
    if "time_ns" in wanted and actual.time_ns != int(wanted["time_ns"]):
        return False
    return "time_offset_ns" not in wanted or actual.time_ns == received_ns + int(wanted["time_offset_ns"])


def _show(sample: Sample | Mapping[str, Any]) -> str:
    if isinstance(sample, Sample):
        return f"{sample.metric}={sample.value:g} q={sample.quality} t={sample.time_ns}"
    return f"{sample['metric']}={float(sample['value']):g} q={int(sample.get('quality', 0))}"


def _compare(example: Example, result: DecodeResult, discarded: int) -> list[str]:
    """Differences between the decoded result and the expectation, as sentences."""
    differences: list[str] = []
    remaining = list(result.samples)
    missing: list[dict[str, Any]] = []
    for wanted in _expected_samples(example):
        hit = next((i for i, s in enumerate(remaining) if _fits(s, wanted, example.received_ns)), None)
        if hit is None:
            missing.append(wanted)
        else:
            remaining.pop(hit)
    if missing:
        differences.append("expected but not decoded: " + "; ".join(_show(s) for s in missing[:5]))
    if remaining:
        differences.append("decoded but not expected: " + "; ".join(_show(s) for s in remaining[:5]))
    if "status" in example.expect and dict(result.status) != dict(example.expect["status"]):
        differences.append(f"status {dict(result.status)} != expected {dict(example.expect['status'])}")
    for note in example.expect.get("notes", ()):
        if not any(note in actual for actual in result.notes):
            differences.append(f"no note contains {note!r} (notes: {list(result.notes)})")
    if "discarded_bytes" in example.expect and discarded != int(example.expect["discarded_bytes"]):
        differences.append(f"framer discarded {discarded} bytes, expected {example.expect['discarded_bytes']}")
    return differences


def check_examples(profile: DeviceProfile, registry: DecoderRegistry) -> list[ProfileProblem]:
    """Decode every example of ``profile`` with ``registry``; return the problems (empty when all pass)."""
    file = str(profile.path) if profile.path is not None else profile.id
    problems: list[ProfileProblem] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        line = next((profile.lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in profile.lines), None)
        problems.append(ProfileProblem(file, path_text(path), line, message))

    missing = sorted(name for name in profile.decoder_names() if name not in registry)
    if missing:
        add(("transport",), f"decoder(s) not registered: {', '.join(missing)}")
        return problems
    for example in profile.examples:
        where: tuple[str | int, ...] = ("examples", example.index)
        wanted_error = example.expect.get("error")
        try:
            result, discarded = decode_example(profile, example, registry)
        except DecodeError as exc:
            if wanted_error is None:
                add((*where, "hex"), f"DecodeError: {exc}")
            elif str(wanted_error) not in str(exc):
                add((*where, "expect", "error"), f"DecodeError {str(exc)!r} does not contain {wanted_error!r}")
            continue
        if wanted_error is not None:
            add((*where, "expect", "error"), f"expected a DecodeError containing {wanted_error!r}, got a result")
            continue
        for difference in _compare(example, result, discarded):
            add((*where, "expect"), difference)
    return problems
