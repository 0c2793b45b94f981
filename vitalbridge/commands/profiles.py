"""`vitalbridge profiles ...`: list, validate and try out device profiles (vendor tooling)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _library(args: argparse.Namespace) -> Any:
    import device_profiles

    return device_profiles.load_library([Path(d) for d in args.profile_dir])


def _list(args: argparse.Namespace) -> int:
    from device_profiles import ProfileError

    try:
        library = _library(args)
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    for profile_id, profile in sorted(library.items()):
        keys = ", ".join(profile.decoder_keys())
        print(f"{profile_id:28} {profile.transport:6} {profile.vendor} {profile.model} [{keys}]")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from device_profiles import ProfileError, check_examples, default_registry, load_profile

    paths: list[Path] = []
    for given in args.paths:
        path = Path(given)
        paths.extend(sorted(path.glob("*/*.yaml")) if path.is_dir() else [path])
    if not paths:
        print("no profile files found", file=sys.stderr)
        return 1
    registry = default_registry()
    failed = 0
    for path in paths:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        problems = check_examples(profile, registry)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"{path}: ok ({profile.id}, {len(profile.examples)} example(s) decoded as expected)")
    return 1 if failed else 0


def _decode(args: argparse.Namespace) -> int:
    from device_profiles import DecodeContext, DecodeError, ProfileError, default_registry

    try:
        library = _library(args)
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    profile = library.get(args.profile_id)
    if profile is None:
        print(f"unknown profile {args.profile_id!r}; known: {', '.join(sorted(library))}", file=sys.stderr)
        return 1
    try:
        payload = bytes.fromhex("".join(args.hex))
    except ValueError:
        print("HEX must be pairs of hex digits (spaces allowed)", file=sys.stderr)
        return 1
    registry = default_registry()
    context = DecodeContext(args.received_ns if args.received_ns is not None else time.time_ns())
    key = args.characteristic
    if key is None and profile.ble is not None:
        if len(profile.decoder_keys()) > 1:
            print(f"name one with --characteristic: {', '.join(profile.decoder_keys())}", file=sys.stderr)
            return 1
        key = profile.decoder_keys()[0]
    decoded: list[tuple[str, Any]] = []
    failures = 0
    if key is not None:
        frames = [(key, payload)]
    else:
        # A serial capture: cut it into frames like the gateway does; a bad frame does not stop the rest.
        framer = profile.make_framer()
        frames = [(frame.name, frame.payload) for frame in framer.feed(payload)]
        if framer.discarded_bytes:
            print(json.dumps({"discarded_bytes": framer.discarded_bytes}), file=sys.stderr)
    for name, frame_bytes in frames:
        try:
            decoded.append((name, profile.decoder_for(name, registry)(frame_bytes, context)))
        except (DecodeError, KeyError) as exc:
            failures += 1
            print(json.dumps({"source": name, "error": str(exc)}), file=sys.stderr)
    for name, result in decoded:
        for sample in result.samples:
            unit = profile.streams[sample.metric].unit
            print(json.dumps({"metric": sample.metric, "value": sample.value, "unit": unit,
                              "time_ns": sample.time_ns, "quality": sample.quality, "source": name}))
        if result.status or result.notes:
            print(json.dumps({"source": name, "status": dict(result.status), "notes": list(result.notes)},
                             default=str), file=sys.stderr)
    return 1 if failures and not decoded else 0


def add_parser(subparsers: Any) -> None:
    """Register the `profiles` command group: ``list``, ``validate PATH...``, ``decode PROFILE_ID HEX``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "profiles", help="list, validate and try device profiles"
    )

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)
    commands = parser.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND")

    def with_dirs(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile-dir", action="append", default=[], metavar="DIR",
                         help="also load <vendor>/<model>.yaml profiles from DIR (repeatable)")

    listing = commands.add_parser("list", help="list the shipped profiles (and those in --profile-dir)")
    with_dirs(listing)
    listing.set_defaults(func=_list)

    validate = commands.add_parser(
        "validate", help="check profile files against the schema and decode their example frames"
    )
    validate.add_argument("paths", nargs="+", metavar="PATH",
                          help="a profile file, or a folder of <vendor>/<model>.yaml")
    validate.set_defaults(func=_validate)

    decode = commands.add_parser("decode", help="decode bytes with a profile; prints one JSON sample per line")
    decode.add_argument("profile_id", metavar="PROFILE_ID")
    decode.add_argument("hex", nargs="+", metavar="HEX", help="payload bytes as hex (spaces allowed)")
    decode.add_argument("--characteristic", "--frame", dest="characteristic", default=None,
                        help="characteristic (name or UUID) or serial frame name; serial bytes are "
                             "otherwise framed like a capture")
    decode.add_argument("--received-ns", type=int, default=None, help="receive time (Unix ns), default now")
    with_dirs(decode)
    decode.set_defaults(func=_decode)
