"""What every rule's configuration has in common, and how a rule is tuned for one patient.

Each rule type has a pydantic model (its fields are the YAML keys of a rules file); a rule is built
from its model. :meth:`ConfiguredRule.for_patient` applies a patient's settings (their overrides of
this rule's fields, time zone, targets, SpO2 scale) and returns the rule that judges that patient;
``version`` is a short hash of the configuration actually used, recorded with every alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloud.rules._base import AlertChange, RuleState, Severity, normalise_severity
from cloud.rules._settings import Condition, PatientSettings
from vitals.catalogue import CATALOGUE
from vitals.samples import Sample

__all__ = ["ConfiguredRule", "MetricName", "RuleConfig", "known_metric"]


def known_metric(name: str) -> str:
    """``name`` if the catalogue knows it; otherwise a ValueError listing what it knows."""
    if name not in CATALOGUE:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    return name


MetricName = Annotated[str, AfterValidator(known_metric)]
"""A catalogue metric's name."""


class RuleConfig(BaseModel):
    """Fields every rule has. ``conditions``: the rule applies only to patients with one of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    severity: Severity = "warning"
    conditions: tuple[Condition, ...] = ()
    enabled: bool = True
    description: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return normalise_severity(value) if isinstance(value, str) else value

    def for_settings(self, settings: PatientSettings) -> Self:
        """This configuration as it applies to the patient with ``settings`` (defaults: itself)."""
        return self

    def adapted(self, settings: PatientSettings) -> Self:
        """:meth:`for_settings`, then the patient's overrides of this rule's fields (validated)."""
        base = self.for_settings(settings)
        overrides = settings.rules.get(self.name)
        if not overrides:
            return base
        forbidden = {"type", "name"} & set(overrides)
        if forbidden:
            raise ValueError(f"rule {self.name}: a patient's settings cannot change {', '.join(sorted(forbidden))}")
        try:
            return type(self).model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ValueError(f"rule {self.name}: patient override {where}: {error['msg']}") from None


class ConfiguredRule:
    """Base of the built-in rules: built from a :class:`RuleConfig`, tuned per patient by :meth:`for_patient`."""

    Config: ClassVar[type[RuleConfig]]
    config: RuleConfig
    name: str
    metrics: frozenset[str]
    context_ns: int
    ticks: bool = False
    uses_facts: bool = False
    reevaluates: bool = True
    """False for rules late data cannot change (silences are judged on the clock): no late span is named."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self.name = config.name
        self.severity: Severity = config.severity
        self.conditions: frozenset[str] = frozenset(config.conditions)
        self.version = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:12]

    @classmethod
    def from_config(cls, config: RuleConfig) -> Self:
        """Build the rule from its validated configuration."""
        return cls(config)

    def evaluate(self, state: RuleState | None, patient: str,
                 samples: Sequence[Sample]) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` (None: a fresh patient) with time-ordered ``samples`` of its metrics."""
        raise NotImplementedError

    def tick(self, state: RuleState | None, patient: str, now_ns: int) -> tuple[RuleState, list[AlertChange]]:
        """Advance ``state`` to the clock time ``now_ns`` (Unix ns) without new data."""
        raise NotImplementedError

    def for_patient(self, settings: PatientSettings) -> ConfiguredRule:
        """The rule that judges the patient with ``settings`` (this one when nothing changes)."""
        adapted = self.config.adapted(settings)
        return self if adapted == self.config else type(self).from_config(adapted)
