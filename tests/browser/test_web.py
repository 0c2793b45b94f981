"""The web app in a real browser, on pages whose API is in place: signing in, the alert inbox (acknowledge,
a live update from a reading published through the real broker), family isolation, Chinese, accessibility."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cloud.web._i18n import load_catalogues
from tests.browser.conftest import (
    DOCTOR,
    FAMILY,
    PATIENTS,
    REPO,
    WebCloud,
    axe_violations,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

ENGLISH_MESSAGES = frozenset(load_catalogues(REPO / "cloud" / "web" / "locale")["zh-Hans"].messages)
# Latin text a Chinese page may show: the product's name, units, score and standard names, times, ids.
ALLOWED_LATIN = re.compile(r"^(VitalBridge|NEWS|SpO|JSON|HH|MM|SDNN|RMSSD|mmHg|mmol|mg|dL|kg|min|ms|mV|\d.*)$")
VISIBLE_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    const text = node.textContent.trim();
    if (!text || !parent || parent.closest('[translate=no], script, style, code, [hidden]')) continue;
    if (!parent.checkVisibility()) continue;
    texts.push(text);
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title]')) {
    if (el.closest('[translate=no], [hidden]')) continue;
    for (const name of ['aria-label', 'placeholder', 'title']) {
      if (el.getAttribute(name)) texts.push(el.getAttribute(name).trim());
    }
  }
  return texts;
}"""


def untranslated(page: Any) -> list[str]:
    """Visible texts of a Chinese page that are English: a catalogue message id, or Latin words."""
    found = []
    for text in page.evaluate(VISIBLE_TEXT):
        if text in ENGLISH_MESSAGES:
            found.append(text)
            continue
        for word in re.findall(r"[A-Za-z][A-Za-z']+", text):
            if not ALLOWED_LATIN.match(word):
                found.append(text)
                break
    return found


def test_doctor_signs_in_and_lands_on_the_worklist(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{web.url}/")
    page.wait_for_url("**/web/")
    sign_in(page, web.url, DOCTOR)
    page.wait_for_url("**/web/worklist")
    assert page.locator("nav a[href='/web/alerts']").is_visible()
    assert not page.locator("nav a[href='/web/family']").is_visible()
    page.goto(f"{web.url}/web/login")
    screenshot(page, "login")


def test_wrong_password_is_told_plainly(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{web.url}/web/login")
    page.locator("#username").fill(DOCTOR)
    page.locator("#password").fill("not the password")
    page.locator("#login-form button[type=submit]").click()
    page.locator("#error").get_by_text("Wrong user name or password.").wait_for()
    assert "/web/login" in page.url


def test_doctor_acknowledges_an_alert_and_it_leaves_the_inbox(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/alerts")
    falling = PATIENTS[1]
    row = page.locator("#alerts tbody tr", has_text=falling[1]).first
    row.wait_for()
    assert "Urgent" in row.inner_text()
    screenshot(page, "alert-inbox")
    alert_id = row.get_attribute("data-alert")
    page.goto(f"{web.url}/web/alerts/{alert_id}")
    page.locator("#transitions tbody tr").first.wait_for()
    screenshot(page, "alert-detail")
    page.goto(f"{web.url}/web/alerts")
    row = page.locator(f"#alerts tbody tr[data-alert='{alert_id}']")
    row.get_by_role("button", name="Acknowledge").click()
    row.wait_for(state="detached")
    assert web.service.store is not None
    assert web.service.store.alert(int(alert_id)).state == "acknowledged"  # type: ignore[union-attr]
    page.get_by_label("Show").select_option("open")
    page.locator(f"#alerts tbody tr[data-alert='{alert_id}']", has_text="Acknowledged").wait_for()


def test_a_new_alert_appears_live_after_a_reading_is_published(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/alerts")
    later = PATIENTS[2]
    page.locator("#alerts tbody tr, #empty:not([hidden])").first.wait_for()
    assert page.locator("#alerts tbody tr", has_text=later[1]).count() == 0
    page.wait_for_timeout(1000)  # the stream is connected: it starts with what happens next
    web.publish_spo2(later[0], [95.0] * 30 + [84.0] * 120, ago_s=400)
    page.locator("#alerts tbody tr", has_text=later[1]).wait_for(timeout=30_000)  # no reload


def test_family_sees_their_patient_and_cannot_reach_another(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    sign_in(page, web.url, FAMILY)
    page.wait_for_url("**/web/family")
    assert not page.locator("nav a[href='/web/alerts']").is_visible()
    other = PATIENTS[1][0]
    page.goto(f"{web.url}/web/patients/{other}")
    page.locator("#error").get_by_text("Not found, or not one of your patients.").wait_for()
    assert page.locator("#patient-body").is_hidden()
    assert PATIENTS[1][1] not in page.content()
    status = page.evaluate("""async (p) => (await fetch('/api/v1/patients/' + p + '/vitals?metric=spo2',
        {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('vb.token')}})).status""", other)
    assert status == 404
    page.goto(f"{web.url}/web/alerts")
    page.locator("#alerts tbody tr, #empty:not([hidden])").first.wait_for()
    assert page.locator("#alerts tbody tr", has_text=PATIENTS[1][1]).count() == 0


def test_signed_out_pages_send_to_sign_in(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{web.url}/web/alerts")
    page.wait_for_url("**/web/login")


@pytest.mark.parametrize("path", ["/web/login", "/web/alerts", "/web/alerts/1", "/web/preferences",
                                  f"/web/patients/{PATIENTS[1][0]}"])
def test_chinese_pages_have_no_untranslated_text(web: WebCloud, new_page: Any, path: str) -> None:
    page = new_page(locale="zh-CN")
    if path != "/web/login":
        sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}{path}")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.locator("body[data-ready]").wait_for(state="attached")
    assert untranslated(page) == []
    if path == "/web/alerts":
        screenshot(page, "alert-inbox-zh")


def test_language_choice_is_kept_for_the_user(web: WebCloud, new_page: Any) -> None:
    page = new_page(locale="en-GB")
    sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}/web/preferences")
    page.locator("#language").select_option("zh-Hans")
    page.locator("#glucose").select_option("mmol/L")
    page.locator("#prefs button[type=submit]").click()
    page.wait_for_function("document.documentElement.lang === 'zh-Hans'")
    page.goto(f"{web.url}/web/alerts")
    assert page.locator("h1").inner_text() == "警报收件箱"


@pytest.mark.parametrize("path", ["/web/login", "/web/alerts", "/web/alerts/1", "/web/preferences",
                                  f"/web/patients/{PATIENTS[1][0]}"])
def test_pages_have_no_serious_accessibility_violations(web: WebCloud, new_page: Any, path: str) -> None:
    page = new_page()
    if path != "/web/login":
        sign_in(page, web.url, DOCTOR)
    page.goto(f"{web.url}{path}")
    page.locator("body[data-ready]").wait_for(state="attached")
    assert axe_violations(page) == []


def test_keyboard_reaches_the_sign_in_form(web: WebCloud, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{web.url}/web/login")
    page.locator("body[data-ready]").wait_for(state="attached")
    assert page.evaluate("document.activeElement.id") == "username"  # the form's first field has the focus
    page.keyboard.type(DOCTOR)
    page.keyboard.press("Tab")
    page.keyboard.type("a long browser test password")
    page.keyboard.press("Enter")
    page.wait_for_url("**/web/worklist")


def test_api_docs_load_their_assets_locally(web: WebCloud, new_page: Any) -> None:
    page = new_page(width=1024)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{web.url}/api/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    assert requests and all(url.startswith(web.url) or url.startswith("data:") for url in requests), requests
