"""Facts about a patient that are not samples, handed to the clock tick: today, their gateway's status.

The cloud's gateway health (fed by the ``vb/v1/{gateway}/status`` birth/death messages) fills one
:class:`PatientFacts` per patient whose gateway it knows and passes them to
``RuleEngine.tick(states, now_ns, facts=...)``; rules with ``uses_facts`` (``gateway_offline``)
judge them. Rules stay pure: a fact is a value with the time it became true, never a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GatewayStatus", "PatientFacts"]

GatewayStatus = Literal["online", "offline", "unknown"]


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What is known about a patient's gateway at tick time.

    ``gateway_status`` is ``online`` (its birth message is the latest), ``offline`` (its death
    message or last will is the latest) or ``unknown`` (never heard from; nothing is judged).
    ``status_since_ns`` is when that status began (Unix ns), as the status message says or as the
    cloud received it; None when not known.
    """

    gateway: str | None = None
    gateway_status: GatewayStatus = "unknown"
    status_since_ns: int | None = None
