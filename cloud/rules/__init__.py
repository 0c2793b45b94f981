"""Alert rules (pure): samples in, alert changes out; state per patient, owned by the rule."""

from cloud.rules._base import AlertChange, Rule
from cloud.rules._registry import RULE_TYPES, build_rules, default_rule_config
from cloud.rules._sustained import SustainedThresholdRule

__all__ = [
    "RULE_TYPES",
    "AlertChange",
    "Rule",
    "SustainedThresholdRule",
    "build_rules",
    "default_rule_config",
]
