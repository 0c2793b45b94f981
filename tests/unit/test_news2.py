"""NEWS2 against the Royal College of Physicians' 2017 chart: every row boundary of every parameter, every band edge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.rules.news2 import NEWS2_PARAMETERS, News2Score, news2_score

# (value, part) at both sides of every boundary of the chart, read from the chart row by row.
RESPIRATION = [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)]
SPO2_SCALE1 = [(40, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SPO2_SCALE2_AIR = [(40, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (97, 0), (100, 0)]
SPO2_SCALE2_OXYGEN = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1), (94, 1), (95, 2),
                      (96, 2), (97, 3), (100, 3)]
SYSTOLIC = [(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3)]
PULSE = [(20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3),
         (250, 3)]
TEMPERATURE = [(30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2),
               (42.0, 2)]


@pytest.mark.parametrize(("value", "part"), RESPIRATION)
def test_respiration_rate(value: float, part: int) -> None:
    assert news2_score(respiration_rate=value).parts == {"respiration_rate": part}


@pytest.mark.parametrize(("value", "part"), SPO2_SCALE1)
def test_spo2_scale_1_ignores_oxygen_for_the_saturation_part(value: float, part: int) -> None:
    assert news2_score(spo2=value).parts == {"spo2": part}
    assert news2_score(spo2=value, on_oxygen=True).parts == {"spo2": part, "air_or_oxygen": 2}


@pytest.mark.parametrize(("value", "part"), SPO2_SCALE2_AIR)
def test_spo2_scale_2_on_air(value: float, part: int) -> None:
    assert news2_score(spo2=value, on_oxygen=False, scale=2).parts == {"spo2": part, "air_or_oxygen": 0}


@pytest.mark.parametrize(("value", "part"), SPO2_SCALE2_OXYGEN)
def test_spo2_scale_2_on_oxygen_scores_high_saturations(value: float, part: int) -> None:
    assert news2_score(spo2=value, on_oxygen=True, scale=2).parts == {"spo2": part, "air_or_oxygen": 2}


@pytest.mark.parametrize(("value", "part"), SYSTOLIC)
def test_systolic_blood_pressure(value: float, part: int) -> None:
    assert news2_score(systolic_bp=value).parts == {"systolic_bp": part}


@pytest.mark.parametrize(("value", "part"), PULSE)
def test_pulse(value: float, part: int) -> None:
    assert news2_score(pulse=value).parts == {"pulse": part}


@pytest.mark.parametrize(("value", "part"), TEMPERATURE)
def test_temperature(value: float, part: int) -> None:
    assert news2_score(temperature=value).parts == {"temperature": part}


@pytest.mark.parametrize(("level", "part"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness_acvpu(level: str, part: int) -> None:
    assert news2_score(consciousness=level).parts == {"consciousness": part}  # type: ignore[arg-type]


def test_air_or_oxygen() -> None:
    assert news2_score(on_oxygen=True).parts == {"air_or_oxygen": 2}
    assert news2_score(on_oxygen=False).parts == {"air_or_oxygen": 0}


@pytest.mark.parametrize(("value", "part"), [(20.4, 0), (20.5, 2), (11.49, 1), (11.5, 0), (38.04, 0), (38.05, 1)])
def test_values_between_rows_are_rounded_to_the_chart_resolution(value: float, part: int) -> None:
    parameter = "temperature" if value > 30 else "respiration_rate"
    assert news2_score(**{parameter: value}).parts == {parameter: part}  # type: ignore[arg-type]


def _full(**changes: object) -> News2Score:
    # A healthy set of observations scoring 0, with the given parameters changed.
    values: dict[str, object] = {"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 120,
                                 "pulse": 70, "consciousness": "A", "temperature": 37.0}
    values.update(changes)
    return news2_score(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "total", "band"), [
    ({}, 0, "zero"),
    ({"pulse": 95}, 1, "low"),
    ({"pulse": 95, "temperature": 38.5, "spo2": 94, "systolic_bp": 105}, 4, "low"),
    ({"respiration_rate": 25}, 3, "low_medium"),  # a 3 in one parameter, total below 5
    ({"respiration_rate": 25, "pulse": 95}, 4, "low_medium"),
    ({"consciousness": "V", "pulse": 95}, 4, "low_medium"),
    ({"pulse": 115, "respiration_rate": 22, "temperature": 38.5}, 5, "medium"),
    ({"respiration_rate": 25, "pulse": 115}, 5, "medium"),  # 5 with a 3: medium, not low-medium
    ({"pulse": 115, "respiration_rate": 22, "spo2": 94, "temperature": 38.5}, 6, "medium"),
    ({"pulse": 115, "respiration_rate": 22, "spo2": 93}, 6, "medium"),
    ({"pulse": 115, "respiration_rate": 22, "spo2": 93, "temperature": 38.5}, 7, "high"),
    ({"respiration_rate": 30, "spo2": 85, "on_oxygen": True, "systolic_bp": 85, "pulse": 140,
      "consciousness": "U", "temperature": 34.0}, 20, "high"),
])
def test_total_and_band_edges(changes: dict[str, object], total: int, band: str) -> None:
    score = _full(**changes)
    assert (score.total, score.band, score.partial) == (total, band, False)
    assert score.total == sum(score.parts.values())


def test_partial_score_lists_what_is_missing() -> None:
    score = news2_score(spo2=92, pulse=120)
    assert score.partial
    assert score.missing == ("respiration_rate", "air_or_oxygen", "systolic_bp", "consciousness", "temperature")
    assert (score.total, score.band, score.parts) == (4, "low", {"spo2": 2, "pulse": 2})
    assert news2_score().missing == NEWS2_PARAMETERS


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="scale must be 1 or 2"):
        news2_score(spo2=90, scale=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="consciousness must be one of"):
        news2_score(consciousness="X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a finite number"):
        news2_score(pulse=float("nan"))


@given(rr=st.floats(2, 80), spo2=st.floats(40, 100), oxygen=st.booleans(), sbp=st.floats(40, 300),
       pulse=st.floats(20, 300), temp=st.floats(30, 45), scale=st.sampled_from([1, 2]))
def test_any_observation_set_scores_within_the_chart(rr: float, spo2: float, oxygen: bool, sbp: float, pulse: float,
                                                      temp: float, scale: int) -> None:
    score = news2_score(respiration_rate=rr, spo2=spo2, on_oxygen=oxygen, systolic_bp=sbp, pulse=pulse,
                        temperature=temp, scale=scale)  # type: ignore[arg-type]
    assert all(0 <= part <= 3 for part in score.parts.values())
    assert score.missing == ("consciousness",)
    assert 0 <= score.total <= 20
    assert (score.band == "high") == (score.total >= 7)
