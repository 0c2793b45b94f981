"""Typed options of the pipeline stages: each stage declares a pydantic model of what it accepts.

The gateway config's ``pipeline`` section is checked against these models before any stage is
built (see :func:`edge.pipeline.pipeline_problems`), so a typo or an impossible value is reported
with its field and line instead of failing while readings flow.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["NonNegativeNumber", "PositiveNumber", "StageOptions", "ThresholdsOption"]

_LARGEST = 1e6  # seconds (11 days), hertz, metric units: beyond it a value is a typo, and ns would overflow

PositiveNumber = Annotated[float, Field(gt=0, le=_LARGEST, allow_inf_nan=False)]
"""A number above zero, at most a million (seconds, hertz, ...)."""

NonNegativeNumber = Annotated[float, Field(ge=0, le=_LARGEST, allow_inf_nan=False)]
"""A number from zero to a million."""


class StageOptions(BaseModel):
    """Base of every stage's options model: unknown keys and loose types are mistakes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ThresholdsOption(StageOptions):
    """``thresholds: {low, high}`` in the metric's unit; a missing or null side has no limit."""

    low: Annotated[float, Field(allow_inf_nan=False)] | None = None
    high: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsOption:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self
