"""Every rule type at its edges (just below, at, above; durations one sample short and long), through the engine."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules import PatientFacts, PatientSettings, TargetRange
from tests.unit._rules_harness import T0, S, Stored, rule_from, series
from vitals.samples import Quality, Sample

H = 3600
D = 86_400


def _states(changes: list[Any]) -> list[str]:
    return [change.state for change in changes]


# -- threshold: pending once, then open; a pending episode that ends early says it never fired ------------------
def _threshold(**overrides: Any) -> dict[str, Any]:
    entry = {"type": "threshold", "name": "low", "metric": "spo2", "direction": "below", "threshold": 90,
             "for_s": 60, "clear_threshold": 92, "clear_s": 30}
    return {**entry, **overrides}


def test_threshold_announces_pending_once_across_calls_then_fires() -> None:
    rule = Stored(rule_from(_threshold()), pending=True)
    first = rule.evaluate("p1", series([(0, 85.0), (10, 85.0)]))
    assert _states(first) == ["pending"]
    assert first[0].fired_ns == T0 + 60 * S  # when it fires if it holds
    assert "pending, alerts if it lasts 1 min" in first[0].message
    assert rule.evaluate("p1", series([(20, 85.0), (59, 84.0)])) == []  # not again
    assert _states(rule.evaluate("p1", series([(60, 84.0)]))) == ["open"]


def test_threshold_pending_that_ends_before_firing_is_resolved_unfired() -> None:
    rule = Stored(rule_from(_threshold()), pending=True)
    assert _states(rule.evaluate("p1", series([(0, 85.0)]))) == ["pending"]
    [ended] = rule.evaluate("p1", series([(59, 95.0)]))
    assert (ended.state, ended.details, ended.resolved_ns) == ("resolved", {"fired": False}, T0 + 59 * S)
    # Within one call nothing is told: the episode came and went.
    assert rule.evaluate("p1", series([(100, 85.0), (120, 95.0)])) == []


def test_without_pending_the_engine_passes_only_fired_alerts() -> None:
    rule = Stored(rule_from(_threshold()))
    assert rule.evaluate("p1", series([(0, 85.0)])) == []
    assert rule.evaluate("p1", series([(59, 95.0)])) == []
    assert _states(rule.evaluate("p1", series([(100, 85.0), (160, 85.0)]))) == ["open"]


@pytest.mark.parametrize(("value", "fires"), [(89.0, True), (90.0, False), (91.0, False)])
def test_threshold_value_edges(value: float, fires: bool) -> None:
    rule = Stored(rule_from(_threshold(for_s=0)))
    assert bool(rule.evaluate("p1", series([(0, value)]))) is fires


def test_threshold_takes_the_patients_target_range() -> None:
    settings = {"p1": PatientSettings(targets={"spo2": TargetRange(low=94)})}
    rule = Stored(rule_from(_threshold(threshold=88, clear_threshold=89, target="low", for_s=0)), settings=settings)
    assert _states(rule.evaluate("p1", series([(0, 93.0)]))) == ["open"]  # below the target of 94
    assert rule.evaluate("p2", series([(0, 93.0)])) == []  # no target: 88


def test_high_severity_reads_as_urgent_and_unknown_severities_are_refused() -> None:
    assert rule_from(_threshold(severity="high")).severity == "urgent"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="severity"):
        rule_from(_threshold(severity="loud"))


# -- repeating: k of n ------------------------------------------------------------------------------------------
def _repeating(**overrides: Any) -> Stored:
    entry = {"type": "repeating", "name": "sbp_high", "metric": "bp_systolic", "direction": "above",
             "threshold": 160, "k": 3, "n": 5, "within_s": 7 * D}
    return Stored(rule_from({**entry, **overrides}))


def _readings(values: list[float], metric: str = "bp_systolic", step_s: int = H) -> list[Sample]:
    return series([(i * step_s, v) for i, v in enumerate(values)], metric)


def test_repeating_fires_at_the_kth_of_n() -> None:
    assert _states(_repeating().evaluate("p1", _readings([170, 150, 170, 150, 170]))) == ["open"]
    assert _repeating().evaluate("p1", _readings([170, 150, 170, 150, 150])) == []  # 2 of 5
    assert _repeating().evaluate("p1", _readings([170, 150, 160, 150, 170])) == []  # 160 is not above 160
    assert _repeating().evaluate("p1", _readings([170, 150, 150, 150, 150, 150, 170, 170])) == []  # fell out of n


def test_repeating_clears_after_n_normal_readings_and_forgets_old_ones() -> None:
    rule = _repeating()
    rule.evaluate("p1", _readings([170, 170, 170]))
    # Four normal readings: still 1-3 of the last five beyond, so the alert goes on.
    assert "resolved" not in _states(rule.evaluate("p1", series([((3 + i) * H, 150.0) for i in range(4)],
                                                                  "bp_systolic")))
    assert _states(rule.evaluate("p1", series([(7 * H, 150.0)], "bp_systolic"))) == ["resolved"]
    late = _repeating(within_s=2 * H)
    assert late.evaluate("p1", _readings([170, 170, 170], step_s=H + 1)) == []  # the first is too old


def test_repeating_skips_heartbeats() -> None:
    rule = _repeating()
    heartbeat = int(Quality.HEARTBEAT)
    samples = [Sample("bp_systolic", T0 + i * S, 170.0, heartbeat if i else 0) for i in range(3)]
    assert rule.evaluate("p1", samples) == []


def test_repeating_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match=r"k \(4\) cannot exceed n \(3\)"):
        _repeating(k=4, n=3)


# -- confirmed: a crisis reading confirmed by a second within the window ---------------------------------------
def _crisis() -> Stored:
    return Stored(rule_from({
        "type": "confirmed", "name": "crisis", "confirm_s": 900, "severity": "critical",
        "crossings": [{"metric": "bp_systolic", "direction": "above", "threshold": 180},
                      {"metric": "bp_diastolic", "direction": "above", "threshold": 120}]}))


def _bp(at_s: float, systolic: float, diastolic: float) -> list[Sample]:
    return [Sample("bp_systolic", T0 + int(at_s * S), systolic), Sample("bp_diastolic", T0 + int(at_s * S), diastolic)]


@pytest.mark.parametrize(("second_at", "fires"), [(899, True), (900, True), (901, False)])
def test_confirmed_needs_a_second_reading_within_the_window(second_at: int, fires: bool) -> None:
    rule = _crisis()
    assert rule.evaluate("p1", _bp(0, 190, 100)) == []
    changes = rule.evaluate("p1", _bp(second_at, 185, 100))
    assert _states(changes) == (["open"] if fires else [])
    if fires:
        assert changes[0].severity == "critical" and changes[0].worst_value == 185.0


def test_confirmed_one_measurement_is_one_reading_and_the_limit_itself_does_not_cross() -> None:
    rule = _crisis()
    assert rule.evaluate("p1", _bp(0, 190, 125)) == []  # systolic and diastolic of one measurement
    assert rule.evaluate("p1", _bp(60, 180, 120)) == []  # at the limits: not a crisis reading
    assert _states(rule.evaluate("p1", _bp(120, 170, 121))) == ["open"]  # diastolic confirms


def test_confirmed_resolves_at_a_normal_reading_once_the_window_passed() -> None:
    rule = _crisis()
    rule.evaluate("p1", _bp(0, 190, 100) + _bp(300, 190, 100))
    assert _states(rule.evaluate("p1", _bp(1000, 150, 90))) == ["open"]  # 700 s after the last crossing: goes on
    assert _states(rule.evaluate("p1", _bp(1200, 150, 90))) == ["resolved"]


# -- home BP average over a morning/evening protocol, in the patient's time zone --------------------------------
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def _at(day: int, hour: int, minute: int = 0) -> int:
    moment = dt.datetime(2024, 6, 1 + day, hour, minute, tzinfo=PARIS)
    return int(moment.timestamp()) * S


def _protocol(days: int, systolic: float, diastolic: float, *, hours: tuple[int, int] = (7, 19)) -> list[Sample]:
    samples: list[Sample] = []
    for day in range(days):
        for hour in hours:
            at = _at(day, hour)
            samples += [Sample("bp_systolic", at, systolic), Sample("bp_diastolic", at, diastolic)]
    return samples


def _average(**overrides: Any) -> Stored:
    entry = {"type": "bp_average", "name": "home_bp", "systolic": 135, "diastolic": 85, "days": 7,
             "min_readings": 12}
    return Stored(rule_from({**entry, **overrides}), settings={"p1": PatientSettings(time_zone="Europe/Paris")})


@pytest.mark.parametrize(("systolic", "diastolic", "fires"), [
    (134.0, 84.0, False), (135.0, 80.0, True), (130.0, 85.0, True), (136.0, 90.0, True)])
def test_home_bp_mean_at_or_above_the_limits(systolic: float, diastolic: float, fires: bool) -> None:
    changes = _average().evaluate("p1", _protocol(6, systolic, diastolic))
    assert _states(changes) == (["open"] if fires else [])
    if fires:
        assert changes[0].details["readings"] == 12


def test_home_bp_waits_for_enough_readings_and_ignores_readings_outside_the_windows() -> None:
    assert _average().evaluate("p1", _protocol(5, 150, 95) + _protocol(1, 150, 95)[:2]) == []  # 11 readings
    assert _average().evaluate("p1", _protocol(6, 150, 95, hours=(13, 14))) == []  # midday: not the protocol
    # 13:30 in Paris is 11:30 UTC: inside the morning window for a patient in UTC, outside it here.
    utc = Stored(rule_from({"type": "bp_average", "name": "home_bp", "min_readings": 2}))
    midday = [Sample("bp_systolic", _at(0, 13, 30), 150.0), Sample("bp_systolic", _at(1, 13, 30), 150.0)]
    assert _states(utc.evaluate("p1", midday)) == ["open"]
    assert _average(min_readings=2).evaluate("p1", midday) == []


def test_home_bp_mean_is_over_the_last_days_only() -> None:
    rule = _average(min_readings=4)
    old_high = _protocol(2, 170, 100)
    later_normal = [s._replace(time_ns=s.time_ns + 8 * D * S) for s in _protocol(3, 120, 75)]
    changes = rule.evaluate("p1", old_high + later_normal)
    assert _states(changes) == ["resolved"]  # fired on the high days, cleared once they left the window


# -- trend: weight gain --------------------------------------------------------------------------------------------
def _weight(**overrides: Any) -> Stored:
    entry = {"type": "trend", "name": "gain", "metric": "body_weight", "change": 2.0, "window_s": 3 * D}
    return Stored(rule_from({**entry, **overrides}))


@pytest.mark.parametrize(("last", "fires"), [(81.9, False), (82.0, False), (82.1, True)])
def test_weight_gain_more_than_the_change_within_the_window(last: float, fires: bool) -> None:
    samples = series([(0, 80.0), (D, 81.0), (2.5 * D, last)], "body_weight")
    assert _states(_weight().evaluate("p1", samples)) == (["open"] if fires else [])


def test_weight_gain_outside_the_window_does_not_count() -> None:
    samples = series([(0, 80.0), (D, 81.0), (3 * D + 1, 82.5)], "body_weight")
    assert _weight().evaluate("p1", samples) == []  # 80 kg fell out of the 3 days: +1.5 kg


def test_weight_slope_per_day() -> None:
    rising = series([(i * D / 2, 80.0 + 0.5 * i) for i in range(6)], "body_weight")  # 1 kg/day
    assert _states(_weight(method="slope", change=0.9).evaluate("p1", rising)) == ["open"]
    assert _weight(method="slope", change=1.1).evaluate("p1", rising) == []


def test_weight_loss_direction() -> None:
    samples = series([(0, 80.0), (D, 77.5)], "body_weight")
    assert _states(_weight(direction="fall").evaluate("p1", samples)) == ["open"]
    assert _weight().evaluate("p1", samples) == []


# -- baseline: the patient's own history, with a warm-up -----------------------------------------------------------
def _hourly(values: list[float], metric: str = "pulse_rate", start_h: int = 0) -> list[Sample]:
    return series([((start_h + i) * H, v) for i, v in enumerate(values)], metric)


def _baseline(**overrides: Any) -> Stored:
    entry = {"type": "baseline", "name": "hr_up", "metric": "pulse_rate", "z": 3, "min_deviation": 10,
             "period_s": H, "warmup_periods": 48, "half_life_periods": 168}
    return Stored(rule_from({**entry, **overrides}))


def test_baseline_fires_on_a_departure_after_the_warm_up() -> None:
    normal = [69.0, 71.0] * 30  # 60 hours of 70 +- 1
    rule = _baseline()
    assert rule.evaluate("p1", _hourly([*normal, 95.0, 70.0])) != []  # the 95 period is judged at the next


@pytest.mark.parametrize(("learnt_hours", "deviation", "fires"), [
    (47, 25.0, False),  # the 48th period is judged while only 47 are learnt: still warming up
    (49, 25.0, True),
    (60, 9.0, False),  # beyond 3 SD but below the 10 /min floor
    (60, 10.0, True),
])
def test_baseline_edges(learnt_hours: int, deviation: float, fires: bool) -> None:
    normal = [69.0, 71.0] * (learnt_hours // 2) + [70.0] * (learnt_hours % 2)
    changes = _baseline().evaluate("p1", _hourly([*normal, 70.0 + deviation, 70.0]))
    assert bool(changes) is fires


def test_baseline_deviating_periods_do_not_teach_it() -> None:
    rule = _baseline(for_s=0)
    rule.evaluate("p1", _hourly([69.0, 71.0] * 30))
    high = rule.evaluate("p1", _hourly([95.0] * 10 + [70.0, 70.0], start_h=60))
    assert _states(high) == ["resolved"]
    # Ten hours at 95 left the baseline where it was: 95 still deviates.
    assert _states(rule.evaluate("p1", _hourly([95.0, 70.0], start_h=72))) == ["open"]


# -- time below range ------------------------------------------------------------------------------------------------
def _cgm(low_minutes: int, hours: float = 24) -> list[Sample]:
    steps = int(hours * 12)
    return series([(i * 300, 3.5 if i >= steps - low_minutes // 5 else 6.0) for i in range(steps + 1)],
                  "blood_glucose")


def _tbr(**overrides: Any) -> Stored:
    entry = {"type": "time_below_range", "name": "tbr", "low": 3.9, "max_percent": 4, "window_s": D,
             "max_gap_s": 900}
    return Stored(rule_from({**entry, **overrides}))


@pytest.mark.parametrize(("low_minutes", "fires"), [(55, False), (60, True)])
def test_time_below_range_share_of_the_window(low_minutes: int, fires: bool) -> None:
    # 60 of 1440 minutes = 4.17 % (> 4 %); 55 = 3.8 %.
    assert bool(_tbr().evaluate("p1", _cgm(low_minutes))) is fires


def test_time_below_range_needs_coverage() -> None:
    assert _tbr().evaluate("p1", _cgm(60, hours=12)) == []  # half a day covered, 70 % needed


# -- NEWS2 rule ---------------------------------------------------------------------------------------------------
def _news2(**overrides: Any) -> dict[str, Any]:
    return {"type": "news2", "name": "news2", "band": "medium", "max_age_s": 3600, "min_parameters": 3,
            **overrides}


def _obs(at_s: float, **values: float) -> list[Sample]:
    return [Sample(metric, T0 + int(at_s * S), value) for metric, value in values.items()]


def test_news2_rule_grades_by_band_and_lists_what_is_missing() -> None:
    rule = Stored(rule_from(_news2()))
    assert rule.evaluate("p1", _obs(0, spo2=91, pulse_rate=115)) == []  # two parameters: not judged
    [change] = rule.evaluate("p1", _obs(10, respiratory_rate=22))  # 3 + 2 + 2 = 7: high
    assert (change.state, change.worst_value, change.severity) == ("open", 7.0, "critical")
    assert change.details["missing"] == ["air_or_oxygen", "systolic_bp", "consciousness", "temperature"]
    assert change.details["partial"] is True and change.details["band"] == "high"


def test_news2_rule_edges_of_its_band_and_of_the_age_limit() -> None:
    rule = Stored(rule_from(_news2()))
    assert rule.evaluate("p1", _obs(0, spo2=94, pulse_rate=95, respiratory_rate=22)) == []  # 4: low
    assert [(c.state, c.severity) for c in rule.evaluate("p1", _obs(1, spo2=93))] == [("open", "urgent")]  # 5
    stale = Stored(rule_from(_news2()))
    assert stale.evaluate("p1", _obs(0, spo2=93) + _obs(3601, pulse_rate=115, respiratory_rate=22)) == []


def test_news2_rule_uses_scale_2_and_oxygen_from_the_settings() -> None:
    settings = {"copd": PatientSettings(spo2_scale=2, on_oxygen=False)}
    rule = Stored(rule_from(_news2(band="low_medium")), settings=settings)
    samples = _obs(0, spo2=88, pulse_rate=70, respiratory_rate=16)
    assert rule.evaluate("copd", samples) == []  # 88 % is on target on scale 2
    assert _states(rule.evaluate("other", samples)) == ["open"]  # scale 1: 88 % scores 3


# -- no data, missed measurements, gateway offline: the clock ----------------------------------------------------------
def test_no_data_opens_once_after_the_allowed_silence_and_resolves_on_data() -> None:
    rule = Stored(rule_from({"type": "no_data", "name": "quiet", "metrics": ["spo2", "pulse_rate"],
                             "max_silence_s": 2 * H}))
    rule.evaluate("p1", series([(0, 97.0)]))
    assert rule.tick(T0 + 2 * H * S) == []
    [opened] = rule.tick(T0 + 2 * H * S + 1)
    assert (opened.state, opened.episode_start_ns) == ("open", T0)
    assert opened.message == "no spo2, pulse_rate for 2 h (allowed 2 h)"
    assert rule.tick(T0 + 5 * H * S) == []
    [resolved] = rule.evaluate("p1", series([(6 * H, 70.0)], "pulse_rate"))
    assert (resolved.state, resolved.episode_start_ns, resolved.resolved_ns) == ("resolved", T0, T0 + 6 * H * S)


def _missed(**settings: Any) -> Stored:
    rule = rule_from({"type": "missed_measurement", "name": "bp_missed", "metric": "bp_systolic",
                      "windows": [{"start": "06:00", "end": "10:00"}, {"start": "18:00", "end": "22:00"}]})
    return Stored(rule, settings={"p1": PatientSettings(time_zone="Europe/Paris", **settings)})


def test_missed_measurement_counts_missed_windows_in_local_time_until_a_reading() -> None:
    rule = _missed()
    rule.evaluate("p1", [Sample("bp_systolic", _at(0, 7), 130.0)])
    assert rule.tick(_at(0, 22)) != []  # the evening window of day 0 closed with no reading
    assert rule.tick(_at(0, 23)) == []
    [again] = rule.tick(_at(1, 10))
    assert (again.state, again.details["missed"], again.episode_start_ns) == ("open", 2, _at(0, 22))
    [resolved] = rule.evaluate("p1", [Sample("bp_systolic", _at(1, 19), 128.0)])
    assert resolved.state == "resolved"
    assert rule.tick(_at(1, 22)) == []  # the evening reading came


def test_missed_measurement_edges_of_the_window() -> None:
    rule = _missed()
    rule.evaluate("p1", [Sample("bp_systolic", _at(0, 5, 59), 130.0)])  # before the window
    assert rule.tick(_at(0, 9, 59)) == []  # still open
    assert rule.tick(_at(0, 10)) != []  # closed at 10:00 with no reading in it
    on_time = _missed()
    on_time.evaluate("p1", [Sample("bp_systolic", _at(0, 6), 130.0), Sample("bp_systolic", _at(0, 9, 59), 130.0)])
    assert on_time.tick(_at(0, 10)) == []


def test_missed_measurement_takes_the_care_plan() -> None:
    plan = [{"metric": "bp_systolic", "windows": [{"start": "08:00", "end": "09:00"}]}]
    rule = _missed(care_plan=plan)
    rule.evaluate("p1", [Sample("bp_systolic", _at(0, 7), 130.0)])
    [missed] = rule.tick(_at(0, 9))
    assert "expected 08:00-09:00 Europe/Paris" in missed.message


def test_gateway_offline_from_facts() -> None:
    rule = Stored(rule_from({"type": "gateway_offline", "name": "gw", "offline_s": 1800}))
    offline = {"p1": PatientFacts("gw-1", "offline", T0)}
    assert rule.tick(T0 + 1799 * S, offline) == []
    [opened] = rule.tick(T0 + 1800 * S, offline)
    assert (opened.state, opened.episode_start_ns, opened.message) == ("open", T0, "gw-1 offline for 30 min")
    assert rule.tick(T0 + 4000 * S, offline) == []
    assert rule.tick(T0 + 4000 * S, {"p1": PatientFacts("gw-1", "unknown")}) == []
    [back] = rule.tick(T0 + 5000 * S, {"p1": PatientFacts("gw-1", "online", T0 + 4500 * S)})
    assert (back.state, back.resolved_ns) == ("resolved", T0 + 4500 * S)
    assert rule.tick(T0 + 6000 * S) == []  # no facts: nothing known, nothing changes


def test_gateway_online_since_before_the_outage_ends_it_where_it_began() -> None:
    # A stale "online since" (older than the outage) must not end the episode before it started.
    rule = Stored(rule_from({"type": "gateway_offline", "name": "go", "offline_s": 60}))
    [opened] = rule.tick(T0 + 300 * S, {"p1": PatientFacts("gw", "offline", T0 + 100 * S)})
    [back] = rule.tick(T0 + 400 * S, {"p1": PatientFacts("gw", "online", T0)})
    assert back.state == "resolved" and back.resolved_ns == opened.episode_start_ns == T0 + 100 * S


# -- every rule type on random series with the clock moving between them ------------------------------------------
_ONE_OF_EACH: list[dict[str, Any]] = [
    _threshold(),
    {"type": "repeating", "name": "r", "metric": "spo2", "direction": "below", "threshold": 90, "k": 2, "n": 3},
    {"type": "confirmed", "name": "c", "crossings": [{"metric": "spo2", "direction": "below", "threshold": 88}],
     "confirm_s": 120},
    {"type": "bp_average", "name": "b", "min_readings": 2, "days": 1},
    {"type": "trend", "name": "t", "metric": "spo2", "direction": "fall", "change": 3, "window_s": 600},
    {"type": "trend", "name": "ts", "metric": "spo2", "method": "slope", "change": 50, "window_s": 600},
    {"type": "baseline", "name": "bl", "metric": "spo2", "direction": "below", "period_s": 60, "warmup_periods": 3,
     "for_s": 60},
    {"type": "time_below_range", "name": "tb", "metric": "spo2", "low": 90, "max_percent": 20, "window_s": 600,
     "max_gap_s": 60},
    _news2(min_parameters=1, band="low"),
    {"type": "no_data", "name": "nd", "metrics": ["spo2"], "max_silence_s": 120},
    {"type": "missed_measurement", "name": "mm", "metric": "spo2", "windows": [{"start": "00:00", "end": "00:10"}]},
    {"type": "gateway_offline", "name": "go", "offline_s": 60},
]
_EVENTS = st.lists(st.one_of(
    st.tuples(st.just("sample"), st.integers(1, 400), st.sampled_from(["spo2", "bp_systolic", "bp_diastolic"]),
              st.floats(40, 200, allow_nan=False), st.sampled_from([0, 0, int(Quality.ARTIFACT)])),
    st.tuples(st.just("tick"), st.integers(1, 400), st.sampled_from(["online", "offline", "unknown"]),
              st.floats(0, 1), st.just(0)),
), max_size=60)


@settings(max_examples=40, deadline=None)
@given(events=_EVENTS, entry=st.sampled_from(_ONE_OF_EACH))
def test_any_series_with_ticks_keeps_states_json_and_episodes_consistent(events: list[Any],
                                                                        entry: dict[str, Any]) -> None:
    rule = Stored(rule_from(entry), settings={"p1": PatientSettings(time_zone="Asia/Kolkata")}, pending=True)
    now = T0
    opened: set[int] = set()
    for kind, step_s, what, value, quality in events:
        now += step_s * S
        if kind == "sample":
            low, high = (40.0, 100.0) if what == "spo2" else (40.0, 200.0)
            sample = Sample(what, now, min(max(value, low), high), quality)
            changes = rule.evaluate("p1", [sample])
        else:
            since = now - int(value * 600) * S
            changes = rule.tick(now, {"p1": PatientFacts("gw", what, since)})
        for change in changes:
            assert change.severity in ("info", "warning", "urgent", "critical")
            assert change.message and "\n" not in change.message
            if change.state == "open":
                opened.add(change.episode_start_ns)
            if change.state == "resolved" and change.details.get("fired", True):
                assert change.episode_start_ns in opened  # only what fired is resolved as fired
                assert change.resolved_ns is not None and change.resolved_ns >= change.episode_start_ns
    for text in rule.stored.values():
        assert json.loads(text) is not None  # stored as JSON: no NaN, no tuples, no objects


def test_the_listed_default_set_is_a_valid_rules_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vitalbridge.cli import main

    assert main(["rules", "list"]) == 0
    path = tmp_path / "rules.yaml"
    path.write_text(capsys.readouterr().out)
    assert main(["rules", "validate", str(path)]) == 0
    assert "rule(s) OK" in capsys.readouterr().out
