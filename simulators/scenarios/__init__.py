"""Patient scenarios: YAML files describing a patient, devices and a timeline, and their runs.

``load_scenario(name_or_path)`` -> :class:`Scenario`; ``Scenario.start(start_ns, seed)`` ->
:class:`ScenarioRun`; ``ScenarioRun.advance(seconds)`` -> :class:`Chunk`.
"""

from simulators.scenarios.model import (
    DeviceSpec,
    Patient,
    Scenario,
    ScenarioError,
    TimelineEvent,
    list_scenarios,
    load_scenario,
    parse_scenario,
)
from simulators.scenarios.run import Chunk, ScenarioRun

__all__ = [
    "Chunk",
    "DeviceSpec",
    "Patient",
    "Scenario",
    "ScenarioError",
    "ScenarioRun",
    "TimelineEvent",
    "list_scenarios",
    "load_scenario",
    "parse_scenario",
]
