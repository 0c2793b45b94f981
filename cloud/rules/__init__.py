"""Alert rules (pure): state and samples in, state and alert changes out; the engine runs them per patient."""

from cloud.rules._base import AlertChange, Rule, RuleState
from cloud.rules._engine import EngineResult, LateSpan, RuleEngine, StateKey, merge_spans
from cloud.rules._registry import RULE_TYPES, build_rules, default_rule_config
from cloud.rules._sustained import SustainedThresholdRule, format_duration

__all__ = [
    "RULE_TYPES",
    "AlertChange",
    "EngineResult",
    "LateSpan",
    "Rule",
    "RuleEngine",
    "RuleState",
    "StateKey",
    "SustainedThresholdRule",
    "build_rules",
    "default_rule_config",
    "format_duration",
    "merge_spans",
]
