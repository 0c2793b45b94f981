"""The web app's pages over the data endpoints (worklist, series, summary, today, settings): the worklist
order, a patient's chart from the real InfluxDB, the printable summary, the family's day, the settings form;
the same pages in Chinese and under axe-core."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import DOCTOR, FAMILY, PATIENTS, WebCloud, axe_violations, screenshot, sign_in
from tests.browser.test_web import untranslated

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

DATA_PAGES = ["/web/worklist", f"/web/patients/{PATIENTS[1][0]}", f"/web/patients/{PATIENTS[1][0]}/summary",
              f"/web/patients/{PATIENTS[1][0]}/settings"]


def _ready(page: Any) -> None:
    page.locator("body[data-ready]").wait_for(state="attached")


def test_worklist_puts_the_patient_with_an_urgent_alert_first(web: WebCloud, new_page: Any) -> None:
    page = new_page(width=1024)
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/worklist")
    _ready(page)
    rows = page.locator("#worklist tbody tr")
    rows.first.wait_for()
    order = [rows.nth(i).get_attribute("data-patient") for i in range(rows.count())]
    assert order[0] == PATIENTS[1][0], order
    assert set(order) == {p for p, _, _ in PATIENTS}
    assert page.locator("#error").is_hidden()
    screenshot(page, "worklist")


def test_doctor_opens_the_patient_and_sees_a_chart_from_influxdb(web: WebCloud, new_page: Any) -> None:
    page = new_page(width=1024)
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/worklist")
    page.locator("#worklist tbody tr").first.get_by_role("link").first.click()
    page.wait_for_url(f"**/web/patients/{PATIENTS[1][0]}")
    _ready(page)
    chart = page.locator("figure[data-metric='spo2']")
    chart.locator("canvas").first.wait_for()
    assert "alerts" in (chart.get_attribute("aria-label") or "")
    page.get_by_role("button", name="7 days").click()
    chart.locator("canvas").first.wait_for()
    assert page.locator("#error").is_hidden()
    screenshot(page, "patient")


def test_the_weekly_summary_prints_on_its_own(web: WebCloud, new_page: Any) -> None:
    page = new_page(width=1024)
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/patients/{PATIENTS[1][0]}/summary")
    _ready(page)
    page.locator("#summary .card").first.wait_for()
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden() and page.locator("#print").is_hidden()
    screenshot(page, "summary-print")


def test_family_sees_today_in_plain_words(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    sign_in(page, web.url, FAMILY)
    page.wait_for_url("**/web/family")
    _ready(page)
    page.locator("#family section").first.wait_for()
    text = page.locator("#family").inner_text()
    assert PATIENTS[0][1] in text or PATIENTS[0][0] in text
    assert page.locator("#error").is_hidden()
    screenshot(page, "family")


def test_doctor_previews_and_saves_settings_with_a_reason(web: WebCloud, new_page: Any) -> None:
    page = new_page(width=1024)
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/patients/{PATIENTS[1][0]}/settings")
    _ready(page)
    page.locator("#add-target").click()
    row = page.locator("#targets tbody tr").last
    row.locator(".low").fill("88")
    row.locator(".high").fill("92")
    page.locator("#preview").click()
    page.locator("#preview-result p").wait_for()
    page.locator("#reason").fill("COPD target agreed at the clinic")
    page.locator("#settings-form button[type=submit]").click()
    page.locator("#history tbody tr", has_text="COPD target agreed at the clinic").wait_for()
    assert page.locator("#form-errors li").count() == 0
    screenshot(page, "settings")


@pytest.mark.parametrize("path", [*DATA_PAGES, "/web/family"])
def test_data_pages_in_chinese_have_no_untranslated_text(web: WebCloud, new_page: Any, path: str) -> None:
    page = new_page(locale="zh-CN")
    sign_in(page, web.url, FAMILY if path == "/web/family" else DOCTOR)
    page.goto(f"{web.url}{path}")
    _ready(page)
    assert page.locator("#error").is_hidden()
    assert untranslated(page) == []
    if path == "/web/worklist":
        screenshot(page, "worklist-zh")


@pytest.mark.parametrize("path", [*DATA_PAGES, "/web/family"])
def test_data_pages_have_no_serious_accessibility_violations(web: WebCloud, new_page: Any, path: str) -> None:
    page = new_page()
    sign_in(page, web.url, FAMILY if path == "/web/family" else DOCTOR)
    page.goto(f"{web.url}{path}")
    _ready(page)
    assert axe_violations(page) == []
