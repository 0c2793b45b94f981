"""Load device profiles: YAML with line marks -> JSON Schema -> model checks -> :class:`DeviceProfile`."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions

from device_profiles._yamlmarks import MarkedDocument, YamlSyntaxError, path_text, read_marked
from device_profiles.layout import FixedLayout, LayoutSpecError, parse_layout
from device_profiles.profile import (
    BleTransport,
    Characteristic,
    DeviceProfile,
    Example,
    ProfileError,
    ProfileProblem,
    SerialFrame,
    SerialTransport,
    StreamSpec,
    normalize_uuid,
)
from vitals.catalogue import CATALOGUE

__all__ = ["EXAMPLE_RECEIVED_NS", "LIBRARY_DIR", "SCHEMA_PATH", "load_library", "load_profile", "profile_schema"]

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
"""The shipped profiles: ``library/<vendor>/<model>.yaml``."""

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "profile.schema.json"

EXAMPLE_RECEIVED_NS = 1_700_000_000_000_000_000
"""Receive time given to example frames that name none (2023-11-14T22:13:20Z)."""

_Path = tuple[str | int, ...]


@functools.cache
def profile_schema() -> dict[str, Any]:
    """The profile JSON Schema (draft 2020-12) as a dict."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


class _Problems:
    """Collects problems with their lines so one run reports every mistake in a file."""

    def __init__(self, file: str, document: MarkedDocument | None) -> None:
        self.file = file
        self.document = document
        self.items: list[ProfileProblem] = []

    def add(self, path: _Path, message: str) -> None:
        line = self.document.line_of(path) if self.document is not None else None
        self.items.append(ProfileProblem(self.file, path_text(path), line, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ProfileError(sorted(self.items, key=lambda p: (p.line or 0, p.path)))


def _schema_messages(error: jsonschema.exceptions.ValidationError) -> list[tuple[_Path, str]]:
    """Readable (path, message) pairs for one schema error; oneOf errors name the branch that fits."""
    path: _Path = tuple(error.absolute_path)
    if error.validator == "oneOf" and error.context:
        branches: dict[Any, list[jsonschema.exceptions.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        # A branch whose "kind" constant differs is not the one the author meant.
        meant = [errs for errs in branches.values() if not any(e.validator == "const" for e in errs)]
        if len(meant) == 1:
            return [m for sub in meant[0] for m in _schema_messages(sub)]
        if all(e.validator in ("required", "not") for errs in branches.values() for e in errs):
            keys = sorted({k for alt in error.validator_value for k in alt.get("required", ())})
            return [(path, f"needs exactly one of: {', '.join(keys)}")]
        best = jsonschema.exceptions.best_match(error.context)
        return _schema_messages(best)
    if error.validator == "not" and isinstance(error.validator_value, dict):
        both = error.validator_value.get("required")
        if both:
            return [(path, f"may not have both {' and '.join(both)}")]
    message = error.message
    if error.validator == "additionalProperties":
        message = message.replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "type" and path and path[-1] in ("uuid", "service", "hex"):
        message += " (quote it in YAML, e.g. '2a37')"
    return [(path, message)]


def _check_id(data: Mapping[str, Any], path: Path, problems: _Problems) -> None:
    expected = f"{path.parent.name}.{path.stem}"
    if data.get("id") != expected:
        problems.add(("id",), f"id {data.get('id')!r} must match the file path <vendor>/<model>.yaml: {expected!r}")


def _streams(data: Mapping[str, Any], problems: _Problems) -> dict[str, StreamSpec]:
    streams: dict[str, StreamSpec] = {}
    for metric, spec in data["streams"].items():
        where: _Path = ("streams", metric)
        if metric not in CATALOGUE:
            problems.add(where, f"unknown metric {metric!r}; known: {', '.join(sorted(CATALOGUE))}")
            continue
        unit = CATALOGUE[metric].unit
        if spec["unit"] != unit:
            problems.add((*where, "unit"), f"unit {spec['unit']!r} is not the catalogue unit {unit!r} of "
                         f"{metric}; convert with scale and offset")
        low_high = spec.get("range")
        if low_high is not None and not low_high[0] < low_high[1]:
            problems.add((*where, "range"), "range must be [low, high] with low < high")
        streams[metric] = StreamSpec(
            metric=metric,
            unit=unit,
            value_type=str(spec.get("value_type", "float")),
            scale=float(spec.get("scale", 1.0)),
            offset=float(spec.get("offset", 0.0)),
            range=None if low_high is None else (float(low_high[0]), float(low_high[1])),
        )
    return streams


def _layout(spec: Mapping[str, Any], where: _Path, streams: Mapping[str, StreamSpec],
            problems: _Problems) -> FixedLayout | None:
    try:
        layout = parse_layout(spec)
    except LayoutSpecError as exc:
        problems.add((*where, *exc.path), str(exc))
        return None
    for index, item in enumerate(layout.fields):
        if item.metric is not None and item.metric not in streams:
            problems.add((*where, "fields", index, "metric"), f"metric {item.metric!r} has no entry in streams")
    return layout


def _ble(data: Mapping[str, Any], streams: Mapping[str, StreamSpec], problems: _Problems) -> BleTransport:
    match = data.get("match", {})
    characteristics: list[Characteristic] = []
    names: set[str] = set()
    uuids: set[str] = set()
    for index, item in enumerate(data["characteristics"]):
        where: _Path = ("transport", "ble", "characteristics", index)
        uuid = normalize_uuid(item["uuid"])
        if item["name"] in names:
            problems.add((*where, "name"), f"characteristic name {item['name']!r} is used twice")
        if uuid in uuids:
            problems.add((*where, "uuid"), f"characteristic {item['uuid']} is listed twice")
        if item["mode"] == "read" and "poll_s" not in item:
            problems.add(where, "a characteristic in mode 'read' needs poll_s")
        names.add(item["name"])
        uuids.add(uuid)
        layout = _layout(item["layout"], (*where, "layout"), streams, problems) if "layout" in item else None
        characteristics.append(
            Characteristic(
                name=item["name"],
                service_uuid=normalize_uuid(item["service"]),
                uuid=uuid,
                mode=item["mode"],
                decoder=item.get("decoder"),
                layout=layout,
                options=dict(item.get("options", {})),
                poll_s=float(item["poll_s"]) if "poll_s" in item else None,
            )
        )
    return BleTransport(
        name_patterns=tuple(match.get("names", ())),
        service_uuids=tuple(normalize_uuid(u) for u in match.get("service_uuids", ())),
        characteristics=tuple(characteristics),
    )


def _serial(data: Mapping[str, Any], problems: _Problems) -> SerialTransport:
    frames: list[SerialFrame] = []
    for index, item in enumerate(data["frames"]):
        if any(frame.name == item["name"] for frame in frames):
            problems.add(("transport", "serial", "frames", index, "name"), f"frame name {item['name']!r} is used twice")
        frames.append(SerialFrame(item["name"], item["decoder"], item.get("match_prefix", ""),
                                  dict(item.get("options", {}))))
    return SerialTransport(
        baud=int(data["baud"]),
        data_bits=int(data.get("data_bits", 8)),
        parity=str(data.get("parity", "none")),
        stop_bits=int(data.get("stop_bits", 1)),
        framing=dict(data["framing"]),
        frames=tuple(frames),
    )


def _examples(data: Mapping[str, Any], keys: list[str], is_ble: bool, problems: _Problems) -> list[Example]:
    examples: list[Example] = []
    for index, item in enumerate(data["examples"]):
        where: _Path = ("examples", index)
        key = item.get("characteristic")
        if key is None and is_ble and len(keys) > 1:
            problems.add(where, f"name the characteristic (one of: {', '.join(keys)})")
        elif key is not None and key not in keys:
            problems.add((*where, "characteristic"), f"{key!r} is not one of: {', '.join(keys)}")
        try:
            payload = bytes.fromhex("".join(item["hex"].split()))
        except ValueError:
            problems.add((*where, "hex"), "hex must have an even number of hex digits")
            continue
        for s_index, sample in enumerate(item["expect"].get("samples", ())):
            if sample["metric"] not in CATALOGUE:
                problems.add((*where, "expect", "samples", s_index, "metric"), f"unknown metric {sample['metric']!r}")
        examples.append(
            Example(
                index=index,
                payload=payload,
                characteristic=key if key is not None or not is_ble else keys[0],
                received_ns=int(item.get("received_ns", EXAMPLE_RECEIVED_NS)),
                utc_offset_s=int(item.get("utc_offset_s", 0)),
                expect=item["expect"],
                description=str(item.get("description", "")),
            )
        )
    return examples


def load_profile(path: str | Path) -> DeviceProfile:
    """Load, schema-check and model-check one profile file; raise :class:`ProfileError` naming field and line.

    The profile's ``id`` must equal ``<parent folder>.<file stem>``. Decoder names are checked
    against a registry later, by :func:`device_profiles.check_examples`, since registries vary.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError([ProfileProblem(str(path), "(file)", None, f"cannot read: {exc}")]) from None
    try:
        document = read_marked(text)
    except YamlSyntaxError as exc:
        raise ProfileError([ProfileProblem(str(path), "(document)", exc.line, str(exc))]) from None
    problems = _Problems(str(path), document)
    data = document.data
    if not isinstance(data, dict):
        problems.add((), "a profile is a YAML mapping")
        problems.raise_if_any()
    validator = jsonschema.Draft202012Validator(profile_schema())
    for error in validator.iter_errors(data):
        for where, message in _schema_messages(error):
            problems.add(where, message)
    problems.raise_if_any()

    _check_id(data, path, problems)
    streams = _streams(data, problems)
    transport = data["transport"]
    ble = _ble(transport["ble"], streams, problems) if "ble" in transport else None
    serial = _serial(transport["serial"], problems) if "serial" in transport else None
    keys = [c.name for c in ble.characteristics] if ble else [f.name for f in serial.frames] if serial else []
    examples = _examples(data, keys, ble is not None, problems)
    problems.raise_if_any()
    source = data.get("source")
    return DeviceProfile(
        id=data["id"],
        vendor=data["vendor"],
        model=data["model"],
        description=str(data.get("description", "")),
        device_kind=data.get("device_kind"),
        source_document=None if source is None else str(source["document"]),
        streams=streams,
        ble=ble,
        serial=serial,
        examples=tuple(examples),
        path=path,
        lines=document.lines,
    )


def load_library(extra_dirs: Iterable[str | Path] = (), *, include_shipped: bool = True) -> dict[str, DeviceProfile]:
    """Load every ``<vendor>/<model>.yaml`` of the shipped library and of ``extra_dirs``, by id.

    Raises :class:`ProfileError` with the problems of every broken file, or for an id defined twice.
    """
    dirs = ([LIBRARY_DIR] if include_shipped else []) + [Path(d) for d in extra_dirs]
    profiles: dict[str, DeviceProfile] = {}
    problems: list[ProfileProblem] = []
    for directory in dirs:
        for path in sorted(directory.glob("*/*.yaml")):
            try:
                profile = load_profile(path)
            except ProfileError as exc:
                problems.extend(exc.problems)
                continue
            if profile.id in profiles:
                problems.append(ProfileProblem(str(path), "id", profile.lines.get(("id",)),
                                               f"id {profile.id!r} is already defined by {profiles[profile.id].path}"))
                continue
            profiles[profile.id] = profile
    if problems:
        raise ProfileError(problems)
    return profiles
