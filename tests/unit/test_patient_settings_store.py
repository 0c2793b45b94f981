"""Per-patient settings in the store: versions, optimistic saves, history; the ingest's cache; the gateways'
threshold messages (staged with a growing revision, published until the broker takes them); alerts stamped
with the rule and settings versions; stored settings judge exactly as the pure engine does. On SQLite and
PostgreSQL (the shared ``store`` fixture)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.ingest import GatewayConfigPublisher, SettingsCache
from cloud.registry import Gateway, Patient, Registry
from cloud.rules import PatientSettings, RuleEngine, TargetRange, alert_burden, build_rules, patient_levels
from cloud.store import SettingsConflict, SettingsStore, Store
from vitals.catalogue import CATALOGUE
from vitals.patient_thresholds import build_threshold_config, decode_threshold_config
from vitals.samples import Sample

S = 10**9
T0 = 1_700_000_000 * S
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
RULES = [
    {"type": "threshold", "name": "spo2_low", "metric": "spo2", "direction": "below", "threshold": 90,
     "target": "low", "for_s": 60, "clear_threshold": 92, "clear_s": 60, "severity": "urgent"},
    {"type": "threshold", "name": "hr_high", "metric": "heart_rate", "direction": "above", "threshold": 130,
     "for_s": 60, "clear_threshold": 120, "severity": "warning"},
    {"type": "threshold", "name": "copd_rr_high", "conditions": ["copd"], "metric": "respiratory_rate",
     "direction": "above", "threshold": 24.5, "for_s": 60, "clear_threshold": 22},
]


def _spo2_target(low: float) -> PatientSettings:
    return PatientSettings(targets={"spo2": TargetRange(low=low, high=98)})


def test_versions_grow_with_who_when_why_and_the_history_is_kept_newest_first(store: Store) -> None:
    settings = SettingsStore(store.engine)
    assert settings.current("p1").version == 0 and settings.current("p1").settings == PatientSettings()
    first = settings.save("p1", _spo2_target(88), expected_version=0, changed_by="dr.lee", reason="COPD target",
                          at=NOW)
    second = settings.save("p1", _spo2_target(86), expected_version=1, changed_by="nurse.kim", reason="lower",
                           at=NOW + dt.timedelta(hours=1))
    assert (first.version, second.version) == (1, 2)
    current = settings.current("p1")
    assert (current.version, current.changed_by, current.reason, current.changed_at) == (
        2, "nurse.kim", "lower", NOW + dt.timedelta(hours=1))
    assert current.settings.version == "2"  # the settings carry their version (alerts record it)
    assert current.settings.targets["spo2"].low == 86
    assert [(r.version, r.changed_by, r.settings.targets["spo2"].low) for r in settings.history("p1")] == [
        (2, "nurse.kim", 86), (1, "dr.lee", 88)]
    assert settings.history("p2") == [] and settings.versions(["p1", "p2"]) == {"p1": 2}


@pytest.mark.parametrize("expected", [0, 1, 3])
def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(store: Store, expected: int) -> None:
    settings = SettingsStore(store.engine)
    settings.save("p1", _spo2_target(88), expected_version=0, changed_by="a", reason="r", at=NOW)
    settings.save("p1", _spo2_target(87), expected_version=1, changed_by="a", reason="r", at=NOW)
    with pytest.raises(SettingsConflict) as caught:
        settings.save("p1", _spo2_target(80), expected_version=expected, changed_by="b", reason="r", at=NOW)
    assert (caught.value.expected, caught.value.current) == (expected, 2)
    assert settings.current("p1").settings.targets["spo2"].low == 87
    assert len(settings.history("p1")) == 2


def test_the_cache_reloads_only_when_the_stored_version_moves(store: Store) -> None:
    settings = SettingsStore(store.engine)
    cache = SettingsCache(settings)
    assert cache.settings_for(["p1", "p2"]) == {}
    settings.save("p1", _spo2_target(88), expected_version=0, changed_by="a", reason="r", at=NOW)
    first = cache.settings_for(["p1", "p2"])
    again = cache.settings_for(["p1"])
    assert first["p1"] is again["p1"] and cache.reloads == 1  # same object: the engine keeps its tuned rules
    # Saved by another process (another store object over the same database): seen on the next call.
    SettingsStore(store.engine).save("p1", _spo2_target(85), expected_version=1, changed_by="b", reason="r", at=NOW)
    assert cache.settings_for(["p1"])["p1"].targets["spo2"].low == 85 and cache.reloads == 2


def test_the_cache_drops_overrides_the_rules_refuse_and_keeps_the_rest(store: Store) -> None:
    settings = SettingsStore(store.engine)
    engine = RuleEngine(build_rules(RULES))
    bad = PatientSettings(targets={"spo2": TargetRange(low=88)}, rules={"hr_high": {"for_s": -5}})
    settings.save("p1", bad, expected_version=0, changed_by="a", reason="r", at=NOW)
    used = SettingsCache(settings, engine).settings_for(["p1"])["p1"]
    assert used.rules == {} and used.targets["spo2"].low == 88


def test_levels_follow_the_tuned_rules_and_targets() -> None:
    engine = RuleEngine(build_rules(RULES))
    assert patient_levels(engine, "p1", None) == {"heart_rate": [120.0, 130.0], "spo2": [90.0, 92.0]}
    tuned = PatientSettings(conditions=frozenset({"copd"}), targets={"spo2": TargetRange(low=88, high=92)},
                            rules={"hr_high": {"threshold": 125}})
    assert patient_levels(engine, "p1", tuned) == {
        "heart_rate": [120.0, 125.0], "respiratory_rate": [22.0, 24.5], "spo2": [88.0, 90.0, 92.0]}


async def test_thresholds_are_staged_once_per_change_with_a_growing_revision_and_republished_until_taken(
        store: Store) -> None:
    registry = Registry(store.engine, lambda: NOW)
    for patient in ("p1", "p2", "p3"):
        registry.add_patient(Patient(patient, patient))
    registry.add_gateway(Gateway("gw1", "home 1"))
    registry.add_gateway(Gateway("gw2", "home 2"))
    registry.bind_patient("gw1", "p1")
    registry.bind_patient("gw1", "p2")
    registry.bind_patient("gw2", "p3")
    settings = SettingsStore(store.engine)
    sent: list[tuple[str, bytes]] = []
    accept = {"ok": False}

    async def publish(topic: str, payload: bytes) -> bool:
        sent.append((topic, payload))
        return accept["ok"]

    publisher = GatewayConfigPublisher(settings, RuleEngine(build_rules(RULES)), publish, clock=lambda: NOW)
    assert await publisher.reconcile() == 0  # the broker is away: nothing marked published
    assert sorted(topic for topic, _ in sent) == ["vb/v1/gw1/cmd/config", "vb/v1/gw2/cmd/config"]
    accept["ok"] = True
    sent.clear()
    assert await publisher.reconcile() == 2  # the same messages again, same revision
    assert {decode_threshold_config(payload).revision for _, payload in sent} == {1}
    sent.clear()
    assert await publisher.reconcile() == 0 and sent == []  # nothing changed, nothing sent
    settings.save("p2", _spo2_target(88), expected_version=0, changed_by="a", reason="r", at=NOW)
    assert await publisher.reconcile() == 1
    [(topic, payload)] = sent
    message = decode_threshold_config(payload)
    assert topic == "vb/v1/gw1/cmd/config" and message.revision == 2
    assert message.levels_for("p2")["spo2"] == (88.0, 90.0, 98.0)  # threshold and clear moved; target
    assert message.levels_for("p1")["spo2"] == (90.0, 92.0)
    sent.clear()
    assert await publisher.reconcile(everything=True) == 2  # start-up: every gateway's message again
    row = settings.gateway_config("gw1")
    assert row is not None and (row.revision, row.published_revision) == (2, 2)


def test_a_second_process_staging_the_same_change_does_not_bump_the_revision_twice(store: Store) -> None:
    settings = SettingsStore(store.engine)
    assert settings.stage_gateway_config("gw1", "d1", lambda r: b"%d" % r, NOW) is not None
    assert settings.stage_gateway_config("gw1", "d1", lambda r: b"%d" % r, NOW) is None
    staged = SettingsStore(store.engine).stage_gateway_config("gw1", "d2", lambda r: b"%d" % r, NOW)
    assert staged is not None and staged.revision == 2 and staged.payload == b"2"
    settings.mark_gateway_config_published("gw1", 2, NOW)
    settings.mark_gateway_config_published("gw1", 1, NOW)  # an older mark never undoes a newer one
    row = settings.gateway_config("gw1")
    assert row is not None and row.published_revision == 2


def test_an_alert_records_the_rule_and_settings_versions_that_raised_it(store: Store) -> None:
    engine = RuleEngine(build_rules(RULES))
    saved = SettingsStore(store.engine).save("p1", _spo2_target(93), expected_version=0, changed_by="a",
                                             reason="r", at=NOW)
    samples = [Sample("spo2", T0 + i * S, 91.0) for i in range(0, 121, 10)]
    result = engine.evaluate({}, {"p1": samples}, {"p1": saved.settings})
    [opened] = store.apply_alert_changes(result.changes, at=NOW)
    rule = engine.rules_for("p1", saved.settings)[0]
    assert (opened.rule_version, opened.settings_version) == (getattr(rule, "version", None), "1")
    plain = engine.evaluate({}, {"p2": samples[:1] + [Sample("spo2", T0 + i * S, 80.0) for i in range(1, 90)]})
    [other] = store.apply_alert_changes(plain.changes, at=NOW)
    assert other.settings_version is None and other.rule_version


_levels = st.floats(min_value=80, max_value=97, allow_nan=False).map(lambda v: round(v, 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(low=_levels, for_s=st.sampled_from([0, 30, 60, 120]),
       values=st.lists(st.floats(min_value=75, max_value=100, allow_nan=False), min_size=1, max_size=60))
def test_stored_settings_judge_exactly_as_the_pure_engine_given_the_same_settings(
        store: Store, low: float, for_s: int, values: list[float]) -> None:
    pure = PatientSettings(targets={"spo2": TargetRange(low=low)}, rules={"spo2_low": {"for_s": for_s}})
    settings = SettingsStore(store.engine)
    current = settings.current("hp").version
    settings.save("hp", pure, expected_version=current, changed_by="h", reason="property", at=NOW)
    stored = SettingsCache(settings).settings_for(["hp"])["hp"]
    samples = [Sample("spo2", T0 + i * 10 * S, value) for i, value in enumerate(values)]
    engine = RuleEngine(build_rules(RULES))

    def outcome(chosen: PatientSettings) -> list[tuple[str, str, int, int, float]]:
        changes = engine.evaluate({}, {"hp": samples}, {"hp": chosen}).changes
        return [(c.rule, c.state, c.episode_start_ns, c.last_ns, c.threshold) for c in changes]

    assert outcome(stored) == outcome(pure.model_copy(update={"version": str(current + 1)}))
    assert alert_burden(engine, "hp", samples, stored) == alert_burden(engine, "hp", samples, pure)


def test_the_burden_counts_each_fired_episode_once_by_rule() -> None:
    engine = RuleEngine(build_rules(RULES))
    dips = [Sample("spo2", T0 + i * 10 * S, 89.0 if (i // 30) % 2 else 95.0) for i in range(120)]
    assert alert_burden(engine, "p1", dips, None).by_rule == {"spo2_low": 2}
    assert alert_burden(engine, "p1", dips, _spo2_target(85)).alerts == 0
    assert json.dumps(alert_burden(engine, "p1", [], None).by_rule) == "{}"


@settings(max_examples=60, deadline=None)
@given(low=st.none() | st.floats(min_value=-50, max_value=150, allow_nan=False),
       high=st.none() | st.floats(min_value=-50, max_value=300, allow_nan=False),
       hr=st.floats(min_value=20, max_value=250, allow_nan=False),
       copd=st.booleans())
def test_levels_are_what_the_tuned_rules_judge_and_always_make_a_valid_message(
        low: float | None, high: float | None, hr: float, copd: bool) -> None:
    if low is not None and high is not None and low > high:
        low, high = high, low
    tuned = PatientSettings(conditions=frozenset({"copd"}) if copd else frozenset(),
                            targets={"spo2": TargetRange(low=low, high=high)},
                            rules={"hr_high": {"threshold": hr, "clear_threshold": min(hr, 120)}})
    engine = RuleEngine(build_rules(RULES))
    levels = patient_levels(engine, "p1", tuned)

    def plausible(metric: str, value: float | None) -> bool:
        return value is not None and CATALOGUE[metric].plausible[0] <= value <= CATALOGUE[metric].plausible[1]

    expected: dict[str, set[float]] = {}
    for rule in engine.rules_for("p1", tuned):
        config = rule.config  # type: ignore[attr-defined]
        for value in (config.threshold, config.clear_threshold):
            if plausible(config.metric, value):
                expected.setdefault(config.metric, set()).add(value)
    for bound in (low, high):
        if plausible("spo2", bound):
            expected.setdefault("spo2", set()).add(bound)  # type: ignore[arg-type]
    assert {metric: set(values) for metric, values in levels.items()} == expected
    assert ("respiratory_rate" in levels) == copd
    assert all(values == sorted(values) for values in levels.values())
    message = decode_threshold_config(build_threshold_config({"p1": levels}, revision=1))
    assert {metric: list(values) for metric, values in message.levels_for("p1").items()} == levels
