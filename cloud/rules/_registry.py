"""Rule types by config key, the rules file (YAML, validated per type) and the default rule set.

A rules file is a YAML list of rules; each has a ``type`` (a key of :data:`RULE_TYPES`) and that
type's fields. Mistakes are :class:`~device_profiles.userfile.UserFileError` s naming the file,
the line and the field. The default set ships as package data, one file per condition
(``cloud/rules/defaults/*.yaml``); the sources of its thresholds are in ``docs/clinical-rules.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from cloud.rules._base import Rule
from cloud.rules._clock import (
    GatewayOfflineConfig,
    GatewayOfflineRule,
    MissedMeasurementConfig,
    MissedMeasurementRule,
    NoDataConfig,
    NoDataRule,
)
from cloud.rules._config import ConfiguredRule, RuleConfig
from cloud.rules._counting import ConfirmedConfig, ConfirmedRule, RepeatingConfig, RepeatingRule
from cloud.rules._news2_rule import News2Config, News2Rule
from cloud.rules._protocol import ProtocolAverageConfig, ProtocolAverageRule
from cloud.rules._sustained import SustainedThresholdConfig, SustainedThresholdRule
from cloud.rules._time_in_range import TimeBelowRangeConfig, TimeBelowRangeRule
from cloud.rules._trend import BaselineConfig, BaselineRule, TrendConfig, TrendRule
from device_profiles.userfile import FileProblem, UserFileError, read_yaml, read_yaml_text, validate

__all__ = [
    "DEFAULT_RULE_FILES",
    "RULE_TYPES",
    "AnyRuleConfig",
    "build_rules",
    "default_rule_config",
    "load_rules_file",
    "parse_rules",
]

RULE_TYPES: dict[str, type[ConfiguredRule]] = {
    "sustained_threshold": SustainedThresholdRule,
    "threshold": SustainedThresholdRule,
    "repeating": RepeatingRule,
    "confirmed": ConfirmedRule,
    "bp_average": ProtocolAverageRule,
    "trend": TrendRule,
    "baseline": BaselineRule,
    "time_below_range": TimeBelowRangeRule,
    "news2": News2Rule,
    "no_data": NoDataRule,
    "missed_measurement": MissedMeasurementRule,
    "gateway_offline": GatewayOfflineRule,
}
"""Config ``type`` -> rule class (its ``Config`` is the pydantic model of its fields). New types are added here."""

AnyRuleConfig = Annotated[
    SustainedThresholdConfig | RepeatingConfig | ConfirmedConfig | ProtocolAverageConfig | TrendConfig
    | BaselineConfig | TimeBelowRangeConfig | News2Config | NoDataConfig | MissedMeasurementConfig
    | GatewayOfflineConfig,
    Field(discriminator="type"),
]
"""Any rule's configuration, told apart by ``type`` (for schemas and APIs)."""

DEFAULT_RULE_FILES = ("general", "hypertension", "heart_failure", "copd", "diabetes", "atrial_fibrillation")
"""The default rule set, one package-data file per condition (``general``: every patient)."""


def parse_rules(data: Any, *, file: str, document: Any = None) -> list[RuleConfig]:
    """Validate a rules document (a list of rules); raises :class:`UserFileError` naming file, line and field."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserFileError([FileProblem(file, 1, (), "expected a list of rules (each a mapping with a 'type')")])
    configs: list[RuleConfig] = []
    problems: list[FileProblem] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data):
        line = document.line_of((index,)) if document is not None else None
        if not isinstance(entry, dict):
            problems.append(FileProblem(file, line, (index,), "expected a mapping with a 'type'"))
            continue
        kind = entry.get("type")
        if kind not in RULE_TYPES:
            where = document.line_of((index, "type")) if document is not None else line
            known = ", ".join(sorted(RULE_TYPES))
            message = "missing required field" if kind is None else f"unknown rule type {kind!r}; known: {known}"
            problems.append(FileProblem(file, where, (index, "type"), message))
            continue
        try:
            config = validate(RULE_TYPES[kind].Config, entry, file=file, document=document, root=(index,))
        except UserFileError as exc:
            problems.extend(exc.problems)
            continue
        if config.name in seen:
            where = document.line_of((index, "name")) if document is not None else line
            problems.append(FileProblem(file, where, (index, "name"),
                                        f"rule name {config.name!r} is used twice (first as rule {seen[config.name]})"))
            continue
        seen[config.name] = index
        configs.append(config)
    if problems:
        raise UserFileError(problems)
    return configs


def load_rules_file(path: Path) -> list[RuleConfig]:
    """Read and validate the YAML rules file at ``path`` (see :func:`parse_rules`)."""
    document = read_yaml(path)
    return parse_rules(document.data, file=str(path), document=document)


def _default_configs() -> list[RuleConfig]:
    configs: list[RuleConfig] = []
    folder = resources.files("cloud.rules") / "defaults"
    for name in DEFAULT_RULE_FILES:
        text = (folder / f"{name}.yaml").read_text(encoding="utf-8")
        document = read_yaml_text(text, f"defaults/{name}.yaml")
        configs.extend(parse_rules(document.data, file=f"defaults/{name}.yaml", document=document))
    return configs


def default_rule_config() -> list[dict[str, Any]]:
    """The rules a new installation starts with (clinical defaults a doctor can tune), as plain data."""
    return [config.model_dump(mode="json", exclude_defaults=True) | {"type": config.type, "name": config.name}
            for config in _default_configs()]


def build_rules(config: Sequence[Mapping[str, Any] | RuleConfig] | None = None) -> list[Rule]:
    """Build rule instances from configurations (validated models, or dicts with ``type`` and the type's fields).

    None builds the default rule set. A mistake raises :class:`UserFileError` (a ValueError) naming the rule.
    """
    if config is None:
        configs = _default_configs()
    else:
        dicts = [dict(entry) for entry in config if not isinstance(entry, RuleConfig)]
        if dicts and len(dicts) != len(config):
            raise ValueError("give either rule configurations or dicts, not both")
        configs = parse_rules(dicts, file="rules") if dicts else [c for c in config if isinstance(c, RuleConfig)]
        names = [c.name for c in configs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
    return [RULE_TYPES[c.type].from_config(c) for c in configs if c.enabled]
