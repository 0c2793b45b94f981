"""Rule types by config key, and the default rule set."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cloud.rules._base import Rule
from cloud.rules._sustained import SustainedThresholdRule

__all__ = ["RULE_TYPES", "build_rules", "default_rule_config"]

RULE_TYPES: dict[str, Callable[..., Rule]] = {
    "sustained_threshold": SustainedThresholdRule,
}
"""Config ``type`` -> constructor. New rule types are added here."""


def default_rule_config() -> list[dict[str, Any]]:
    """The rules a new installation starts with (clinical defaults a doctor can tune)."""
    return [
        {
            "type": "sustained_threshold",
            "name": "spo2_low_sustained",
            "metric": "spo2",
            "direction": "below",
            "threshold": 90.0,
            "duration_s": 60.0,
            "clear_threshold": 92.0,
            "clear_s": 60.0,
            "severity": "high",
        },
    ]


def build_rules(config: Sequence[Mapping[str, Any]] | None = None) -> list[Rule]:
    """Build rule instances from config entries (``type`` plus the type's keyword arguments)."""
    rules: list[Rule] = []
    for index, entry in enumerate(default_rule_config() if config is None else config):
        kind = entry.get("type")
        if kind not in RULE_TYPES:
            raise ValueError(f"rule {index}: unknown type {kind!r}; known: {', '.join(sorted(RULE_TYPES))}")
        arguments = {key: value for key, value in entry.items() if key != "type"}
        try:
            rules.append(RULE_TYPES[kind](**arguments))
        except TypeError as exc:
            raise ValueError(f"rule {index} ({entry.get('name', kind)}): {exc}") from None
    return rules
