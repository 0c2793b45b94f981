"""`vitalbridge rules ...`: show the default alert rules and check a rules file."""

from __future__ import annotations

import argparse
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


def _list(_args: argparse.Namespace) -> int:
    from cloud.rules import RULE_TYPES, default_rule_config

    print(f"# rule types: {', '.join(sorted(RULE_TYPES))}")
    print(yaml.safe_dump(default_rule_config(), sort_keys=False), end="")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from cloud.rules import build_rules

    try:
        document = yaml.safe_load(args.path.read_text())
    except OSError as exc:
        print(f"{args.path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    except yaml.YAMLError as exc:
        print(f"{args.path}: not valid YAML: {exc}", file=sys.stderr)
        return 1
    if not isinstance(document, list) or not all(isinstance(entry, dict) for entry in document):
        print(f"{args.path}: expected a list of rules (mappings with a 'type')", file=sys.stderr)
        return 1
    try:
        rules = build_rules(document)
    except (ValueError, KeyError) as exc:
        print(f"{args.path}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.path}: {len(rules)} rule(s) OK: {', '.join(rule.name for rule in rules)}")
    return 0
