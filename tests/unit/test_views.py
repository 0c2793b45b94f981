"""The web app's pure analytics: worklist order, blood pressure by half-day, glucose bands and profile,
weight change, care-plan adherence and the judging of readings."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.rules import CarePlanItem, PatientSettings, TargetRange, TimeWindow
from cloud.views import (
    BUCKET_INTERVALS_S,
    Latest,
    WorklistFacts,
    adherence,
    ambulatory_glucose_profile,
    blood_pressure_summary,
    bucket_interval_s,
    due_on,
    glucose_band,
    mmol_to_mg_dl,
    news2_from_values,
    rank_worklist,
    reading_status,
    silent_since_ns,
    time_in_ranges,
    top_severity,
    weight_change,
)

S = 1_000_000_000
DAY = 86_400 * S
T0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * S  # a Monday, midnight UTC
ZONES = st.sampled_from(["UTC", "Europe/Paris", "Asia/Shanghai", "America/St_Johns", "Asia/Kathmandu"])
TIMES = st.integers(T0 - 30 * DAY, T0 + 30 * DAY)

# -- worklist ---------------------------------------------------------------------------------------------

facts = st.builds(
    WorklistFacts,
    patient=st.text("abcdefgh0123456789", min_size=1, max_size=6),
    unacknowledged=st.dictionaries(st.sampled_from(["critical", "urgent", "warning", "info"]),
                                   st.integers(0, 3), max_size=4),
    score=st.none() | st.integers(0, 20).map(float),
    score_trend=st.none() | st.integers(-10, 10).map(float),
    hours_since_data=st.none() | st.floats(0, 1000),
    adherence=st.none() | st.floats(0, 1),
)


def test_worklist_order_follows_the_criteria_in_turn() -> None:
    patients = [
        WorklistFacts("quiet", hours_since_data=0.1, adherence=1.0),
        WorklistFacts("silent", hours_since_data=30.0),
        WorklistFacts("never", hours_since_data=None),
        WorklistFacts("warned", unacknowledged={"warning": 1}, score=0.0),
        WorklistFacts("urgent", unacknowledged={"urgent": 1, "info": 3}),
        WorklistFacts("critical", unacknowledged={"critical": 1}),
        WorklistFacts("scored_high", score=7.0, score_trend=-1.0),
        WorklistFacts("scored_rising", score=5.0, score_trend=3.0),
        WorklistFacts("scored_flat", score=5.0, score_trend=0.0),
        WorklistFacts("non_adherent", hours_since_data=0.1, adherence=0.2),
    ]
    order = [f.patient for f in rank_worklist(patients)]
    assert order == ["critical", "urgent", "warned", "scored_high", "scored_rising", "scored_flat", "never",
                     "silent", "non_adherent", "quiet"]


@given(st.lists(facts, max_size=12, unique_by=lambda f: f.patient), st.randoms())
def test_worklist_order_does_not_depend_on_the_input_order(patients: list[WorklistFacts], rng: object) -> None:
    shuffled = list(patients)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rank_worklist(shuffled) == rank_worklist(patients)


@given(st.lists(facts, max_size=12, unique_by=lambda f: f.patient))
def test_a_more_severe_unacknowledged_alert_always_ranks_first(patients: list[WorklistFacts]) -> None:
    ranked = rank_worklist(patients)
    order = ["critical", "urgent", "warning", "info", None]
    ranks = [order.index(top_severity(f.unacknowledged)) for f in ranked]
    assert ranks == sorted(ranks)


# -- downsampling -----------------------------------------------------------------------------------------

@given(st.floats(1, 400 * 86_400), st.integers(1, 5000))
def test_bucket_interval_keeps_the_points_under_the_limit(range_s: float, points: int) -> None:
    interval = bucket_interval_s(range_s, points)
    assert interval in BUCKET_INTERVALS_S
    if interval != BUCKET_INTERVALS_S[-1]:
        assert range_s / interval <= points
    smaller = [i for i in BUCKET_INTERVALS_S if i < interval]
    if smaller:
        assert range_s / smaller[-1] > points  # and it is the finest that does


def test_a_30_day_chart_of_300_points_uses_3_hour_buckets() -> None:
    assert bucket_interval_s(30 * 86_400, 300) == 10_800
    assert bucket_interval_s(3600, 300) == 15
    with pytest.raises(ValueError, match="points"):
        bucket_interval_s(60, 0)


# -- blood pressure ----------------------------------------------------------------------------------------

def test_blood_pressure_is_split_at_local_noon() -> None:
    # Shanghai is UTC+8: 23:00 UTC is 07:00 the next morning there, 11:00 UTC is 19:00.
    systolic = [(T0 + 23 * 3600 * S, 140.0), (T0 + DAY + 23 * 3600 * S, 150.0), (T0 + 11 * 3600 * S, 120.0)]
    diastolic = [(t, v - 50) for t, v in systolic]
    summary = blood_pressure_summary(systolic, diastolic, "Asia/Shanghai")
    assert summary is not None and summary.am is not None and summary.pm is not None
    assert (summary.am.systolic, summary.am.diastolic, summary.am.n) == (145.0, 95.0, 2)
    assert (summary.pm.systolic, summary.pm.n) == (120.0, 1)
    assert (summary.all.systolic, summary.all.n) == (136.7, 3)
    in_utc = blood_pressure_summary(systolic, diastolic, "UTC")
    assert in_utc is not None and in_utc.am is not None and in_utc.am.n == 1
    assert blood_pressure_summary([], [], "UTC") is None


@given(st.lists(st.tuples(TIMES, st.integers(60, 250).map(float)), min_size=1, max_size=40), ZONES)
def test_blood_pressure_halves_add_up(readings: list[tuple[int, float]], zone: str) -> None:
    summary = blood_pressure_summary(readings, [], zone)
    assert summary is not None
    halves = [h for h in (summary.am, summary.pm) if h is not None]
    assert sum(h.n for h in halves) == summary.all.n == len(readings)
    values = [v for _t, v in readings]
    for half in [*halves, summary.all]:
        assert half.systolic is not None and min(values) - 0.05 <= half.systolic <= max(values) + 0.05


# -- glucose -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mg_dl", "band"), [
    (40, "very_low"), (53.4, "very_low"), (53.5, "low"), (54, "low"), (69, "low"), (69.6, "in_range"),
    (70, "in_range"), (180, "in_range"), (181, "high"), (250, "high"), (250.4, "high"), (251, "very_high"),
])
def test_glucose_bands_are_the_consensus_ones(mg_dl: float, band: str) -> None:
    assert glucose_band(mg_dl) == band


def test_glucose_meter_values_in_mmol_fall_in_the_bands_the_consensus_names() -> None:
    # The consensus gives both units: 3.0 / 3.9 / 10.0 / 13.9 mmol/L are 54 / 70 / 180 / 250 mg/dL.
    assert [glucose_band(mmol_to_mg_dl(v)) for v in (2.9, 3.0, 3.8, 3.9, 10.0, 10.1, 13.9, 14.0)] == [
        "very_low", "low", "low", "in_range", "in_range", "high", "high", "very_high"]


@given(st.lists(st.floats(20, 600), max_size=200))
def test_time_in_ranges_sums_to_one(values: list[float]) -> None:
    ranges = time_in_ranges(values)
    if not values:
        assert ranges is None
        return
    assert ranges is not None
    assert set(ranges) == {"very_low", "low", "in_range", "high", "very_high"}
    assert abs(sum(ranges.values()) - 1.0) < 1e-9
    assert all(0.0 <= fraction <= 1.0 for fraction in ranges.values())


@given(st.lists(st.tuples(TIMES, st.floats(20, 600)), min_size=1, max_size=300), ZONES,
       st.sampled_from([5, 15, 30, 60, 120]))
def test_agp_percentiles_are_ordered_and_within_the_readings(readings: list[tuple[int, float]], zone: str,
                                                            bin_minutes: int) -> None:
    profile = ambulatory_glucose_profile(readings, zone, bin_minutes)
    assert sum(b.n for b in profile) == len(readings)
    assert [b.minute for b in profile] == sorted({b.minute for b in profile})
    low = round(min(v for _t, v in readings), 1) - 0.1
    high = round(max(v for _t, v in readings), 1) + 0.1
    for b in profile:
        assert b.minute % bin_minutes == 0 and 0 <= b.minute < 1440
        assert low <= b.p10 <= b.p25 <= b.p50 <= b.p75 <= b.p90 <= high


def test_agp_lays_days_over_one_another_in_local_time() -> None:
    # 08:xx in Paris (UTC+1 in March before the change) on three days: one bin, median of the three.
    readings = [(T0 + d * DAY + 7 * 3600 * S + m * 60 * S, v) for d, m, v in ((0, 5, 100.0), (1, 20, 140.0),
                                                                             (2, 59, 120.0))]
    profile = ambulatory_glucose_profile(readings, "Europe/Paris")
    assert [(b.minute, b.n, b.p50) for b in profile] == [(480, 3, 120.0)]
    with pytest.raises(ValueError, match="1440"):
        ambulatory_glucose_profile(readings, "UTC", 7)


# -- weight ------------------------------------------------------------------------------------------------

def test_weight_change_compares_with_the_weighing_n_days_before() -> None:
    morning = 7 * 3600 * S
    weights = [80.0, 80.2, 80.1, 80.5, 81.0, 81.4, 81.9, 82.4]
    readings = [(T0 + d * DAY + morning + d * 600 * S, w) for d, w in enumerate(weights)]
    readings.append((T0 + 7 * DAY + 20 * 3600 * S - DAY, 99.0))  # an evening weighing the day before: not nearest
    change = weight_change(readings, "UTC")
    assert change is not None
    assert change.latest == 82.4
    assert (change.change_1d, change.change_3d, change.change_7d) == (0.5, 1.4, 2.4)
    gap = weight_change([readings[0], readings[-2]], "UTC")
    assert gap is not None and gap.change_1d is None and gap.change_3d is None and gap.change_7d == 2.4
    assert weight_change([], "UTC") is None


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 86_399)), min_size=1, max_size=30, unique=True),
       st.floats(40, 150), st.floats(-20, 20), ZONES)
def test_a_steady_weight_does_not_change_and_a_shift_moves_nothing(days: list[tuple[int, int]], weight: float,
                                                                   shift: float, zone: str) -> None:
    readings = [(T0 + d * DAY + s * S, weight) for d, s in days]
    change = weight_change(readings, zone)
    assert change is not None
    assert all(c in (None, 0.0) for c in (change.change_1d, change.change_3d, change.change_7d))
    shifted = weight_change([(t, w + shift) for t, w in readings], zone)
    assert shifted is not None and shifted.latest == pytest.approx(weight + shift)


# -- care plan ---------------------------------------------------------------------------------------------

PLAN = (CarePlanItem(metric="bp_systolic", windows=(TimeWindow(start="07:00", end="10:00"),
                                                    TimeWindow(start="18:00", end="21:00"))),
        CarePlanItem(metric="body_weight", windows=(TimeWindow(start="06:00", end="09:00"),)))


def test_adherence_counts_finished_windows_with_a_reading() -> None:
    hour = 3600 * S
    # Paris is UTC+1: 07:00-10:00 local is 06:00-09:00 UTC.
    readings = {"bp_systolic": [T0 + 6 * hour, T0 + 9 * hour - 1, T0 + DAY + 17 * hour + 5 * S],
                "body_weight": [T0 + 5 * hour + 30 * 60 * S]}
    found = adherence(PLAN, "Europe/Paris", readings, T0 - hour, T0 + DAY + 21 * hour)
    assert found is not None
    # day 0: bp am done, bp pm missed, weight done; day 1: bp am missed, weight missed, bp pm (17:00 UTC) done
    assert (found.expected, found.received) == (6, 3) and found.ratio == 0.5
    assert adherence((), "UTC", readings, T0, T0 + DAY) is None
    today = due_on(PLAN, "Europe/Paris", dt.date(2026, 3, 3), readings)
    assert [(w.metric, w.label, done) for w, done in today] == [
        ("body_weight", "06:00-09:00", False), ("bp_systolic", "07:00-10:00", False),
        ("bp_systolic", "18:00-21:00", True)]


@given(st.lists(TIMES, max_size=60), ZONES, st.integers(1, 20))
def test_adherence_is_a_ratio_and_more_readings_never_lower_it(times: list[int], zone: str, days: int) -> None:
    start, end = T0 - 10 * DAY, T0 - 10 * DAY + days * DAY
    readings = {"bp_systolic": sorted(times), "body_weight": sorted(times)}
    found = adherence(PLAN, zone, readings, start, end)
    assert found is not None and 0 <= found.received <= found.expected
    more = adherence(PLAN, zone, {k: sorted([*v, start + DAY // 3]) for k, v in readings.items()}, start, end)
    assert more is not None and more.expected == found.expected and more.received >= found.received


# -- judging readings --------------------------------------------------------------------------------------

def test_readings_are_judged_against_the_target_or_else_the_usual_range() -> None:
    plain = PatientSettings()
    copd = PatientSettings(conditions=frozenset({"copd"}), targets={"spo2": TargetRange(low=88, high=92)})
    assert reading_status("spo2", 93, plain) == "low"
    assert reading_status("spo2", 93, copd) == "high"
    assert reading_status("spo2", 90, copd) == "normal"
    assert reading_status("body_weight", 300, plain) == "normal"  # nothing to judge against
    assert reading_status("bp_systolic", 141, plain) == "high"


def test_news2_from_the_newest_readings() -> None:
    latest = {"spo2": Latest(1, 91.0), "respiratory_rate": Latest(1, 22.0), "heart_rate": Latest(1, 140.0),
              "pulse_rate": Latest(2, 80.0), "body_weight": Latest(1, 80.0)}
    score = news2_from_values(latest, PatientSettings())
    assert score is not None
    assert score.parts == {"spo2": 3, "respiration_rate": 2, "pulse": 0, "air_or_oxygen": 0}  # the newer pulse
    assert score.total == 5 and score.partial
    assert news2_from_values({"spo2": Latest(1, 91.0)}, PatientSettings()) is None


def test_a_device_is_silent_once_past_the_limit() -> None:
    assert silent_since_ns(None, T0, 60) is None
    assert silent_since_ns(T0 - 61 * S, T0, 60) == T0 - 61 * S
    assert silent_since_ns(T0 - 60 * S, T0, 60) is None
