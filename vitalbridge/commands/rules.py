"""`vitalbridge rules ...`: show the default alert rules, check a rules file, replay a recording through rules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``rules`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser("rules", help="alert rules")
    commands = parser.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    show = commands.add_parser("list", help="print the default rules as YAML (a starting point for a rules file)")
    show.set_defaults(func=_list)
    check = commands.add_parser("validate", help="check a YAML rules file (a list of rules)")
    check.add_argument("path", type=Path)
    check.set_defaults(func=_validate)
    replay = commands.add_parser(
        "evaluate", help="print, as JSON lines, the alerts a rule set would raise on a recording",
        description="Replay a recording (CSV with columns time, patient, metric, value and optionally quality; "
                    "time as ISO 8601 with a zone or Unix seconds) through the rules, as the cloud would judge it, "
                    "and print each alert change as one JSON line: when it fires, and when it resolves.")
    replay.add_argument("--rules", type=Path, help="YAML rules file (default: the built-in rule set)")
    replay.add_argument("--input", type=Path, required=True, help="CSV recording")
    replay.add_argument("--patient", help="the patient of a recording without a patient column "
                        "(e.g. numerics.csv from `vitalbridge sim export`, whose time_ns column is read too)")
    replay.add_argument("--patient-settings", type=Path,
                        help="YAML mapping of patient id to settings (conditions, targets, rule overrides, ...)")
    replay.add_argument("--pending", action="store_true", help="also print when a delayed alert starts pending")
    replay.add_argument("--tick-s", type=float, default=60.0,
                        help="how often (recording time) the clock-driven rules are ticked (default 60)")
    replay.set_defaults(func=_evaluate)


def _list(_args: argparse.Namespace) -> int:
    from cloud.rules import RULE_TYPES, default_rule_config

    print(f"# rule types: {', '.join(sorted(RULE_TYPES))}")
    print(yaml.safe_dump(default_rule_config(), sort_keys=False), end="")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from cloud.rules import build_rules, load_rules_file
    from device_profiles.userfile import UserFileError

    try:
        rules = build_rules(load_rules_file(args.path))
    except UserFileError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{args.path}: {len(rules)} rule(s) OK: {', '.join(rule.name for rule in rules)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from cloud.rules import RuleEngine, build_rules, load_patient_settings, load_rules_file
    from cloud.rules._replay import change_record, parse_samples_csv, replay
    from device_profiles.userfile import UserFileError

    if not args.tick_s > 0:
        print("vitalbridge rules evaluate: --tick-s must be greater than 0", file=sys.stderr)
        return 2
    try:
        rules = build_rules(load_rules_file(args.rules) if args.rules else None)
        settings = load_patient_settings(args.patient_settings) if args.patient_settings else {}
        engine = RuleEngine(rules, settings, pending=args.pending)
        for patient, patient_settings in settings.items():
            try:
                engine.rules_for(patient, patient_settings)
            except ValueError as exc:
                raise UserFileError(f"{args.patient_settings}: {patient}: {exc}") from None
        try:
            text = args.input.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UserFileError(f"{args.input}: cannot read: {reason}") from None
        samples = parse_samples_csv(text, str(args.input), patient=args.patient)
    except (UserFileError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    told: set[tuple[str, str, int, str]] = set()
    fired = 0
    for change in replay(engine, samples, settings, tick_s=args.tick_s):
        key = (change.rule, change.patient, change.episode_start_ns, change.state)
        if key in told:
            continue  # an episode going on: its transitions are what a reader needs
        told.add(key)
        fired += change.state == "open"
        print(json.dumps(change_record(change)), flush=False)
    patients = len({patient for patient, _sample in samples})
    print(f"{fired} alert(s) on {len(samples)} samples of {patients} patient(s)", file=sys.stderr)
    return 0
