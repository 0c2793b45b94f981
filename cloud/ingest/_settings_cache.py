"""Each patient's settings in force, cached per process and checked against the store per micro-batch.

A doctor's change may be saved by any process (an API pod, another worker): before each micro-batch
and tick the cache asks the store for the versions in force of the patients at hand (one small
query on ``patient_settings_current``) and reloads only those whose version moved. The same
:class:`PatientSettings` object is handed out while its version holds, so the engine keeps the
rules it tuned for that patient.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from cloud.rules import PatientSettings, RuleEngine
from cloud.store import SettingsStore

__all__ = ["SettingsCache"]

log = logging.getLogger(__name__)


class SettingsCache:
    """Patient -> settings in force, over ``store``; blocking (run it in a worker thread).

    With ``engine``, settings are checked against its rules when loaded: overrides a rule refuses (a
    rules file changed since the doctor saved them) are dropped with an error in the log, and the
    patient's other settings still apply, so the patient's data is judged rather than refused.
    """

    def __init__(self, store: SettingsStore, engine: RuleEngine | None = None) -> None:
        self.store = store
        self.engine = engine
        self._cache: dict[str, tuple[int, PatientSettings]] = {}
        self.reloads = 0

    def settings_for(self, patients: Iterable[str]) -> dict[str, PatientSettings]:
        """The settings in force of those of ``patients`` that have any (others are judged by the plain rules)."""
        wanted = set(patients)
        if not wanted:
            return {}
        versions = self.store.versions(wanted)
        for patient in wanted - versions.keys():
            self._cache.pop(patient, None)
        stale = [patient for patient, version in versions.items()
                 if patient not in self._cache or self._cache[patient][0] != version]
        if stale:
            self.reloads += 1
            for patient, record in self.store.settings_of(stale).items():
                self._cache[patient] = (record.version, self._usable(patient, record.settings))
        return {patient: self._cache[patient][1] for patient in versions if patient in self._cache}

    def _usable(self, patient: str, settings: PatientSettings) -> PatientSettings:
        if self.engine is None:
            return settings
        try:
            self.engine.rules_for(patient, settings)
        except ValueError as exc:
            log.error("patient %s: settings version %s: %s; judged without their rule overrides",
                      patient, settings.version, exc)
            return settings.model_copy(update={"rules": {}})
        return settings
