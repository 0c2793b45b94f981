"""The web app's languages: Accept-Language negotiation, and a complete Chinese catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from hypothesis import given
from hypothesis import strategies as st

from cloud.web import LANGUAGES, negotiate_language, parse_accept_language
from cloud.web._i18n import load_catalogues

WEB = Path(__file__).resolve().parents[2] / "cloud" / "web"
METHODS = [("**/templates/**.html", "jinja2"), ("**/static/**.js", "javascript")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"},
           "**/static/**.js": {"parse_template_string": "true"}}  # the same as cloud/web/babel.cfg


def _source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEB), METHODS, OPTIONS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_visible_string_of_the_pages_has_a_chinese_translation() -> None:
    messages = _source_messages()
    assert len(messages) > 100  # the extractor did find the pages' strings
    chinese = load_catalogues(WEB / "locale")["zh-Hans"].messages
    missing = sorted(message for message in messages if not chinese.get(message))
    assert missing == [], f"untranslated in Chinese (add them to locale/zh_Hans/LC_MESSAGES/messages.po): {missing}"


def test_placeholders_survive_translation() -> None:
    import re

    for english, chinese in load_catalogues(WEB / "locale")["zh-Hans"].messages.items():
        assert sorted(re.findall(r"\{\w+\}", english)) == sorted(re.findall(r"\{\w+\}", chinese)), english


def test_accept_language_orders_by_weight_then_position() -> None:
    assert parse_accept_language("fr;q=0.5, zh-CN, en;q=0.8, de;q=0") == ["zh-cn", "en", "fr"]
    assert parse_accept_language("") == []
    assert parse_accept_language("en;q=abc, *;q=0.1, x y") == ["*"]


def test_language_choice_beats_the_browser_and_simplified_chinese_serves_mainland_tags() -> None:
    assert negotiate_language("zh-Hans", "en-GB") == "zh-Hans"
    assert negotiate_language("klingon", "zh-CN,en;q=0.5") == "zh-Hans"
    assert negotiate_language(None, "zh-TW, en;q=0.5") == "en"
    assert negotiate_language(None, "de-DE") == "en"
    assert negotiate_language(None, None) == "en"


@given(chosen=st.one_of(st.none(), st.text(max_size=12)), header=st.one_of(st.none(), st.text(max_size=200)))
def test_negotiation_always_answers_a_language_we_have(chosen: str | None, header: str | None) -> None:
    assert negotiate_language(chosen, header) in LANGUAGES


@given(st.lists(st.tuples(st.sampled_from(["en", "zh-CN", "fr", "de-AT", "*"]),
                          st.integers(min_value=0, max_value=1000)), max_size=5, unique_by=lambda r: r[0]))
def test_parsed_ranges_come_most_wanted_first(ranges: list[tuple[str, int]]) -> None:
    header = ", ".join(f"{tag};q={weight / 1000:.3f}" for tag, weight in ranges)
    parsed = parse_accept_language(header)
    weight = {tag.lower(): w for tag, w in ranges}
    assert set(parsed) == {tag.lower() for tag, w in ranges if w > 0}
    assert [weight[tag] for tag in parsed] == sorted((weight[tag] for tag in parsed), reverse=True)


async def test_missing_npm_packages_leave_the_app_up_and_say_how_to_build_them(tmp_path: Path) -> None:
    import httpx
    from fastapi import FastAPI

    from cloud.web import install_web

    app = FastAPI(docs_url=None, openapi_url="/api/openapi.json")
    install_web(app, modules_dir=tmp_path / "nothing")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web.test") as client:
        page = await client.get("/web/login", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200 and "make setup" in page.text and 'lang="zh-Hans"' in page.text
        docs = await client.get("/api/docs")
        assert docs.status_code == 200 and "make setup" in docs.text
        assert (await client.get("/web/vendor/uplot/dist/uPlot.esm.js")).status_code == 404
        assert (await client.get("/web/vendor/axe-core/axe.js")).status_code == 404  # only the allowed packages
        assert (await client.get("/web/vendor/uplot/../../../pyproject.toml")).status_code == 404
