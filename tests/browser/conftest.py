"""Browser tests: the real stack (Mosquitto, influxd), the real cloud serving the web app, and Debian's
headless Chromium driven by Playwright (never a browser Playwright downloads itself)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloud.auth import Role
from cloud.registry import Patient
from cloud.service import CloudConfig, CloudService
from tests.integration.helpers import numeric_batch, publish_batches
from vitalbridge.stack import LocalStack, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "browser-artifacts"
DOCS_IMG = REPO / "docs" / "img"
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a long browser test password"
DOCTOR, NURSE, FAMILY = "dr.web", "nurse.other", "family.web"
PATIENTS = (("p-web-1", "Ada Stable", ("copd",)), ("p-web-2", "Ben Falling", ("copd",)),
            ("p-web-3", "Cleo Later", ("hypertension",)))
GATEWAY = "gw-web"


@dataclass
class WebCloud:
    """The running cloud: its address, the service, and how to publish readings through the real broker."""

    url: str
    service: CloudService
    stack: LocalStack
    seq: list[int] = field(default_factory=lambda: [0])

    def publish_spo2(self, patient: str, values: list[float], *, ago_s: float) -> None:
        """SpO2 readings 1 s apart, starting ``ago_s`` seconds ago, published as a gateway would."""
        self.seq[0] += 1
        start_ns = time.time_ns() - int(ago_s * 1e9)
        host, port = self.stack.mqtt_url.removeprefix("mqtt://").split(":")
        publish_batches(host, int(port), [numeric_batch(GATEWAY, self.seq[0], patient, "spo2", "%", start_ns, values)])

    def open_alerts(self, patient: str) -> list[Any]:
        """The patient's open alerts in the store."""
        from cloud.store import AlertQuery

        assert self.service.store is not None
        return self.service.store.alerts(AlertQuery(patient=patient, state="open"))


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; skipped where it is not installed (``make setup`` installs it), failed under CI."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: run make setup")
        pytest.skip("Chromium is not installed here (make setup installs the Debian package)")
    if not AXE.exists():
        pytest.fail("the web app's npm packages are not built: run make setup")
    return CHROMIUM


@pytest.fixture(scope="module")
def web(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebCloud]:
    """The cloud (ingest, rules, API, web app) in a thread of its own, with a doctor, a nurse of another
    patient and a family member; one patient already has an open alert."""
    run = tmp_path_factory.mktemp("webcloud")
    name = f"web{secrets.token_hex(3)}"
    config = CloudConfig(mqtt_url=stack.mqtt_url, influx_url=stack.influx_url, influx_db=f"vb_{name}",
                         database_url=f"sqlite:///{run / 'cloud.db'}", http_port=free_port(),
                         client_id=f"ingest-{name}", shared_group=f"group-{name}", registry="off",
                         auth_secret=secrets.token_hex(32))
    service = CloudService(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-cloud", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(60)
    try:
        assert service.security is not None
        registry, identity, now = service.security.registry, service.security.identity, service.security.clock()
        for patient, display, conditions in PATIENTS:
            registry.add_patient(Patient(patient, display, conditions=conditions))
        identity.add_user(DOCTOR, Role.DOCTOR, PASSWORD, now=now)
        identity.add_user(NURSE, Role.NURSE, PASSWORD, now=now)
        identity.add_user(FAMILY, Role.FAMILY, PASSWORD, now=now)
        for patient, _, _ in PATIENTS:
            registry.add_care_team_member(patient, DOCTOR)
        registry.add_family_member(PATIENTS[0][0], FAMILY)
        cloud = WebCloud(service.api_url, service, stack)
        cloud.publish_spo2(PATIENTS[0][0], [96.0] * 120, ago_s=3600)
        cloud.publish_spo2(PATIENTS[1][0], [95.0] * 60 + [85.0] * 120, ago_s=600)
        wait_until(lambda: bool(cloud.open_alerts(PATIENTS[1][0])))
        yield cloud
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """Headless Chromium, one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh contexts (tablet width unless told); fails the test on any script error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(*, locale: str = "en-GB", width: int = 768, height: int = 1024) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height},
                                      timezone_id="Europe/London")
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"script errors in the page: {errors}"


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form."""
    page.goto(f"{base}/web/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(lambda url: "/web/login" not in url)


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (``build/browser-artifacts``); also copied to
    ``docs/img`` when ``VITALBRIDGE_DOCS_IMG=1``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("VITALBRIDGE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / f"web-{name}.png")
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations axe-core (from npm) finds in the page."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated through the browser's protocol, so the page's CSP allows it
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
