"""Alert rules (pure): state and samples in, state and alert changes out; the engine runs them per patient."""

from cloud.rules._base import SEVERITIES, AlertChange, Rule, RuleState, Severity, format_duration, normalise_severity
from cloud.rules._burden import AlertBurden, alert_burden
from cloud.rules._clock import GatewayOfflineRule, MissedMeasurementRule, NoDataRule
from cloud.rules._config import ConfiguredRule, RuleConfig
from cloud.rules._counting import ConfirmedRule, RepeatingRule
from cloud.rules._engine import EngineResult, LateSpan, RuleEngine, StateKey, merge_spans
from cloud.rules._facts import GatewayStatus, PatientFacts
from cloud.rules._levels import gateway_levels, patient_levels
from cloud.rules._news2_rule import News2Rule
from cloud.rules._protocol import ProtocolAverageRule
from cloud.rules._registry import (
    DEFAULT_RULE_FILES,
    RULE_TYPES,
    AnyRuleConfig,
    build_rules,
    default_rule_config,
    load_rules_file,
    parse_rules,
)
from cloud.rules._settings import (
    CONDITIONS,
    CarePlanItem,
    Condition,
    PatientSettings,
    TargetRange,
    TimeWindow,
    load_patient_settings,
)
from cloud.rules._sustained import SustainedThresholdRule
from cloud.rules._time_in_range import TimeBelowRangeRule
from cloud.rules._trend import BaselineRule, TrendRule

__all__ = [
    "CONDITIONS",
    "DEFAULT_RULE_FILES",
    "RULE_TYPES",
    "SEVERITIES",
    "AlertBurden",
    "AlertChange",
    "AnyRuleConfig",
    "BaselineRule",
    "CarePlanItem",
    "Condition",
    "ConfiguredRule",
    "ConfirmedRule",
    "EngineResult",
    "GatewayOfflineRule",
    "GatewayStatus",
    "LateSpan",
    "MissedMeasurementRule",
    "News2Rule",
    "NoDataRule",
    "PatientFacts",
    "PatientSettings",
    "ProtocolAverageRule",
    "RepeatingRule",
    "Rule",
    "RuleConfig",
    "RuleEngine",
    "RuleState",
    "Severity",
    "StateKey",
    "SustainedThresholdRule",
    "TargetRange",
    "TimeBelowRangeRule",
    "TimeWindow",
    "TrendRule",
    "alert_burden",
    "build_rules",
    "default_rule_config",
    "format_duration",
    "gateway_levels",
    "load_patient_settings",
    "load_rules_file",
    "merge_spans",
    "normalise_severity",
    "parse_rules",
    "patient_levels",
]
