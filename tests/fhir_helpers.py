"""Checking FHIR output in tests: every resource must parse with the ``fhir.resources`` R4B models.

R4B is R4 with a handful of resources (none used here) revised; ``fhir.resources`` 8 models R5 at its top
level and R4B (and STU3) in subpackages, so the R4B models are the ones that check an R4 server's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def parse_resource(resource: dict[str, Any]) -> Any:
    """The ``fhir.resources`` R4B model of ``resource`` (raises when it is not valid)."""
    model = get_fhir_model_class(resource["resourceType"])
    return model.model_validate(resource)


def parse_all(resources: Iterable[dict[str, Any]]) -> list[Any]:
    """Every resource parsed; the first that does not parse raises."""
    return [parse_resource(resource) for resource in resources]


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    """The resources of an NDJSON text, each checked to parse."""
    resources = [json.loads(line) for line in text.splitlines() if line.strip()]
    parse_all(resources)
    return resources
