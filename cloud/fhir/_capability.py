"""The server's CapabilityStatement (pure): what ``/fhir`` serves and which search parameters it takes."""

from __future__ import annotations

from typing import Any

from cloud.fhir._resources import ALERT_RESOURCE

__all__ = ["FHIR_VERSION", "capability_statement"]

FHIR_VERSION = "4.0.1"


def _param(name: str, kind: str, documentation: str) -> dict[str, str]:
    return {"name": name, "type": kind, "documentation": documentation}


def capability_statement(base: str, software_version: str, date: str) -> dict[str, Any]:
    """The CapabilityStatement of the server at ``base`` (``date``: a FHIR dateTime, when it was made)."""
    patient_param = _param("patient", "reference", "required: Patient/<id> or <id>; only the caller's own patients")
    count_param = _param("_count", "number", "page size (1-1000, default 100); the Bundle's 'next' link pages on")
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "VitalBridge", "version": software_version},
        "implementation": {"description": "VitalBridge remote patient monitoring: FHIR R4 read API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Every request needs 'Authorization: Bearer <access token>' from /api/v1/auth/token; "
                             "a patient outside the caller's care list or family is answered 404.",
            "security": {"cors": False, "service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}],
                "description": "OAuth2 password flow bearer tokens (JWT)"},
            "resource": [
                {"type": "Observation", "interaction": [{"code": "search-type"}],
                 "searchParam": [
                     patient_param,
                     _param("code", "token", "LOINC, MDC (urn:iso:std:iso:11073:10101) or catalogue name, "
                            "[system|]code, comma for OR; waveforms (ECG, PPG) only when named alone"),
                     _param("date", "date", "prefixes eq, ge, gt, le, lt; repeat to bound both ends"),
                     count_param]},
                {"type": "Patient", "interaction": [{"code": "read"}],
                 "operation": [{"name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]},
                {"type": "Device", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [patient_param]},
                {"type": ALERT_RESOURCE, "interaction": [{"code": "search-type"}],
                 "searchParam": [patient_param, _param("date", "date", "when the alert fired"), count_param]},
            ],
        }],
    }
