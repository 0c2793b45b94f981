"""Registry records, alerts and errors -> FHIR R4 resources; Bundles around them (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from cloud.fhir._codes import METRIC_SYSTEM, URI_SYSTEM, deterministic_uuid
from cloud.fhir._observation import fhir_id, fhir_instant
from cloud.registry import Device, Gateway, Patient
from cloud.store import AlertRecord

__all__ = [
    "ALERT_RESOURCE",
    "DEVICE_SYSTEM",
    "PATIENT_SYSTEM",
    "RULE_SYSTEM",
    "alert_issue",
    "device_resource",
    "gateway_resource",
    "operation_outcome",
    "patient_resource",
    "searchset",
    "transaction_entry",
]

PATIENT_SYSTEM = "urn:vitalbridge:fhir:patient"
"""Identifier system of the pseudonymous patient id the gateways use."""
DEVICE_SYSTEM = "urn:vitalbridge:fhir:device"
"""Identifier system of device and gateway ids."""
RULE_SYSTEM = "urn:vitalbridge:fhir:rule"
"""Code system of the rule that raised an alert."""
ALERT_RESOURCE = "DetectedIssue"
"""Alerts are served as DetectedIssue: it has a severity, evidence (the metric) and a mitigation (the
acknowledgement), which Flag lacks (see the interoperability guide)."""

_PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
_SEVERITY = {"critical": "high", "urgent": "high", "high": "high", "warning": "moderate", "info": "low"}
_ISSUE_TYPES = {
    "error": ("error", "processing"), "bad_request": ("error", "invalid"), "not_found": ("error", "not-found"),
    "unauthorized": ("error", "login"),
    "forbidden": ("error", "forbidden"), "invalid": ("error", "invalid"), "unavailable": ("error", "transient"),
    "too_large": ("error", "too-costly"), "throttled": ("error", "throttled"), "internal": ("fatal", "exception"),
}


def _identifier(system: str, value: str) -> list[dict[str, str]]:
    return [{"system": system, "value": value}]


def patient_resource(patient: Patient) -> dict[str, Any]:
    """A registered patient: the pseudonymous id as identifier, the display name and the date of birth."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(patient.id),
        "identifier": _identifier(PATIENT_SYSTEM, patient.id),
        "active": True,
        "name": [{"text": patient.display_name}],
    }
    if patient.date_of_birth is not None:
        resource["birthDate"] = patient.date_of_birth.isoformat()
    return resource


def device_resource(device: Device) -> dict[str, Any]:
    """A device bound to a patient: its profile as model and name, its gateway as ``parent``."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": fhir_id(device.id),
        "meta": {"profile": [_PHD + "PhdDevice"]},
        "identifier": _identifier(DEVICE_SYSTEM, device.id),
        "status": "active",
        "patient": {"reference": f"Patient/{fhir_id(device.patient)}"},
    }
    if device.profile:
        resource["deviceName"] = [{"name": device.profile, "type": "model-name"}]
        resource["modelNumber"] = device.profile
    if device.gateway:
        resource["parent"] = {"reference": f"Device/{fhir_id(device.gateway)}"}
    return resource


def gateway_resource(gateway: Gateway) -> dict[str, Any]:
    """A home gateway, the parent of the devices it reads (PhdGatewayDevice)."""
    return {
        "resourceType": "Device",
        "id": fhir_id(gateway.id),
        "meta": {"profile": [_PHD + "PhdGatewayDevice"]},
        "identifier": _identifier(DEVICE_SYSTEM, gateway.id),
        "status": "inactive" if gateway.revoked else "active",
        "deviceName": [{"name": "VitalBridge home gateway", "type": "user-friendly-name"}],
        "type": {"text": "home gateway"},
    }


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def alert_issue(alert: AlertRecord) -> dict[str, Any]:
    """An alert as a DetectedIssue: ``preliminary`` while open, ``final`` once resolved or closed; an
    acknowledgement is a ``mitigation``."""
    key = deterministic_uuid("alert", alert.rule, alert.patient, alert.episode_start_ns)
    evidence = f"{alert.metric}: worst {alert.worst_value:g}, threshold {alert.threshold:g}"
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": f"alert-{alert.id}",
        "identifier": _identifier(URI_SYSTEM, f"urn:uuid:{key}"),
        "status": "final" if alert.state in ("resolved", "closed") else "preliminary",
        "code": {"coding": [{"system": RULE_SYSTEM, "code": alert.rule}], "text": alert.rule.replace("_", " ")},
        "severity": _SEVERITY.get(alert.severity, "moderate"),
        "patient": {"reference": f"Patient/{fhir_id(alert.patient)}"},
        "identifiedDateTime": fhir_instant(alert.fired_ns),
        "detail": alert.message,
        "evidence": [{"code": [{"coding": [{"system": METRIC_SYSTEM, "code": alert.metric}], "text": evidence}]}],
    }
    if alert.acknowledged_at is not None:
        resource["mitigation"] = [{"action": {"text": f"acknowledged by {alert.acknowledged_by or 'a clinician'}"},
                                   "date": _aware(alert.acknowledged_at).isoformat().replace("+00:00", "Z")}]
    return resource


def operation_outcome(code: str, message: str) -> dict[str, Any]:
    """An error as an OperationOutcome (``code``: the API's error code, e.g. ``not_found``)."""
    severity, issue = _ISSUE_TYPES.get(code, ("error", "processing"))
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": issue, "diagnostics": message}]}


def searchset(resources: Sequence[dict[str, Any]], base: str, self_url: str, next_url: str | None,
              total: int | None = None) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``resources`` with its ``self`` link and, when there is more, ``next``."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links,
                              "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                                         "search": {"mode": "match"}} for r in resources]}
    if total is not None:
        bundle["total"] = total
    return bundle


def transaction_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction Bundle entry that creates or replaces ``resource`` under its own id (idempotent)."""
    path = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": f"urn:uuid:{deterministic_uuid('entry', path)}", "resource": resource,
            "request": {"method": "PUT", "url": path}}
