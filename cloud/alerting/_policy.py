"""The alerting policy people write: escalation steps, repeats, timeouts, recipients and inhibition.

One pydantic model, validated once when the service starts; a mistake names its field (and, for a
YAML file, the file). Durations are written in minutes (``after_min``) or seconds where noted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AlertingPolicy",
    "EscalationStep",
    "InhibitRule",
    "PolicyError",
    "Recipient",
    "load_policy",
    "parse_recipient",
]

ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""A recipient role: ``doctor``, ``care_team``, ``family`` or any other lower-case word."""


class PolicyError(ValueError):
    """An alerting policy that cannot be used; the message names the file and the field."""


class Recipient(BaseModel):
    """Where one notification goes: an email address or a webhook URL."""

    model_config = ConfigDict(frozen=True)

    channel: Literal["email", "webhook", "hl7"]
    address: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


def parse_recipient(text: str) -> Recipient:
    """``mailto:dr@example.org`` or ``dr@example.org`` is email; ``https://...`` (or http) is a webhook;
    ``mllp://host:port`` is an HL7 v2 receiver (alerts as ``ORU^R40``)."""
    value = text.strip()
    if value.startswith(("http://", "https://")):
        return Recipient(channel="webhook", address=value)
    if value.startswith("mllp://"):
        from urllib.parse import urlsplit

        try:
            port = urlsplit(value).port
        except ValueError:
            port = None
        if not urlsplit(value).hostname or not port:
            raise ValueError(f"{text!r} is not an mllp://host:port address")
        return Recipient(channel="hl7", address=value)
    address = value.removeprefix("mailto:")
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise ValueError(f"{text!r} is neither an email address nor an http(s) URL (nor an mllp://host:port address)")
    return Recipient(channel="email", address=address)


class EscalationStep(BaseModel):
    """Notify ``notify`` (roles) once the alert has been firing unacknowledged for ``after_min`` minutes."""

    model_config = ConfigDict(extra="forbid")

    after_min: float = Field(ge=0)
    notify: list[str] = Field(min_length=1)

    @field_validator("notify")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        import re

        for role in value:
            if not re.match(ROLE_PATTERN, role):
                raise ValueError(f"role {role!r} must be a lower-case word (letters, digits, _)")
        return value


class InhibitRule(BaseModel):
    """While an alert of kind ``source_kind`` is firing, alerts of ``target_kind`` with the same ``equal``
    labels send nothing (they are still recorded). Labels: ``patient``, ``rule``, ``metric``, ``kind``,
    ``severity``; a label missing on either side never matches, so a rule can only under-inhibit."""

    model_config = ConfigDict(extra="forbid")

    source_kind: str = Field(min_length=1)
    target_kind: str = Field(min_length=1)
    equal: list[Literal["patient", "rule", "metric", "kind", "severity"]] = Field(min_length=1)


def _default_steps() -> list[EscalationStep]:
    return [EscalationStep(after_min=0, notify=["doctor"]), EscalationStep(after_min=15, notify=["care_team"]),
            EscalationStep(after_min=45, notify=["family"])]


def _default_repeats() -> dict[str, float | None]:
    return {"critical": 5.0, "urgent": 15.0, "high": 15.0, "warning": 60.0, "info": None, "default": 30.0}


def _default_inhibit() -> list[InhibitRule]:
    return [InhibitRule(source_kind="gateway_offline", target_kind="no_data", equal=["patient"]),
            InhibitRule(source_kind="no_data", target_kind="value", equal=["patient", "metric"])]


class AlertingPolicy(BaseModel):
    """How alerts escalate, repeat, time out and close, who hears of them, and what inhibits what."""

    model_config = ConfigDict(extra="forbid")

    steps: list[EscalationStep] = Field(default_factory=_default_steps, min_length=1)
    repeat_min: dict[str, float | None] = Field(
        default_factory=_default_repeats,
        description="severity -> minutes between repeats until acknowledged (null: never); 'default' for others")
    ack_timeout_min: float | None = Field(60.0, gt=0, description="an acknowledgement lapses after this (null: never)")
    close_after_min: float = Field(30.0, ge=0, description="quiet period after resolution before the alert closes")
    pending_expiry_min: float = Field(1440.0, gt=0, description="a pending alert that never fires closes after this")
    group_window_s: float = Field(10.0, ge=0, le=3600, description="alerts of one patient this close go in one message")
    recipients: dict[str, dict[str, list[Recipient]]] = Field(
        default_factory=dict, description="patient id or '*' -> role -> addresses")
    rule_kinds: dict[str, str] = Field(default_factory=dict, description="rule name -> kind (default: value)")
    inhibit: list[InhibitRule] = Field(default_factory=_default_inhibit)

    @field_validator("recipients", mode="before")
    @classmethod
    def _parse_recipients(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        parsed: dict[str, dict[str, list[Any]]] = {}
        for patient, roles in value.items():
            if not isinstance(roles, dict):
                raise ValueError(f"recipients.{patient} must map roles to lists of addresses")
            parsed[patient] = {}
            for role, addresses in roles.items():
                items = [addresses] if isinstance(addresses, str) else addresses
                if not isinstance(items, list):
                    raise ValueError(f"recipients.{patient}.{role} must be a list of addresses")
                parsed[patient][role] = [parse_recipient(item) if isinstance(item, str) else item for item in items]
        return parsed

    @field_validator("repeat_min")
    @classmethod
    def _positive_repeats(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        for severity, minutes in value.items():
            if minutes is not None and minutes <= 0:
                raise ValueError(f"repeat_min.{severity} must be above 0 minutes (or null for no repeats)")
        return value

    @model_validator(mode="after")
    def _ordered_steps(self) -> AlertingPolicy:
        delays = [step.after_min for step in self.steps]
        if delays != sorted(delays):
            raise ValueError("steps must be in order of after_min")
        return self

    # -- derived values (all durations as timedelta) ------------------------------------------------
    def step_delay(self, index: int) -> dt.timedelta:
        """When escalation step ``index`` is due, counted from the start of firing."""
        return dt.timedelta(minutes=self.steps[index].after_min)

    def repeat_every(self, severity: str) -> dt.timedelta | None:
        """How often an unacknowledged alert of ``severity`` is repeated (None: never)."""
        minutes = self.repeat_min.get(severity, self.repeat_min.get("default"))
        return None if minutes is None else dt.timedelta(minutes=minutes)

    @property
    def ack_timeout(self) -> dt.timedelta | None:
        """How long an acknowledgement holds before the alert fires again (None: for good)."""
        return None if self.ack_timeout_min is None else dt.timedelta(minutes=self.ack_timeout_min)

    @property
    def close_after(self) -> dt.timedelta:
        """The quiet period between resolution and closing."""
        return dt.timedelta(minutes=self.close_after_min)

    @property
    def pending_expiry(self) -> dt.timedelta:
        """How long a pending alert may wait to fire."""
        return dt.timedelta(minutes=self.pending_expiry_min)

    @property
    def group_window(self) -> dt.timedelta:
        """How close in time one patient's notifications must be to share a message."""
        return dt.timedelta(seconds=self.group_window_s)

    def kind_of(self, rule: str, declared: str | None = None) -> str:
        """A rule's kind: the one the rule declares, else ``rule_kinds``, else ``value``."""
        return declared or self.rule_kinds.get(rule, "value")


def load_policy(path: Path) -> AlertingPolicy:
    """Read and validate a YAML policy file; raises :class:`PolicyError` naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    try:
        return AlertingPolicy.model_validate(raw or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise PolicyError(f"{path}: {field}: {error['msg']}") from None
    except ValueError as exc:
        raise PolicyError(f"{path}: {str(exc).splitlines()[0]}") from None
