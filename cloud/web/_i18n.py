"""Languages of the web app: which one a request gets, and the message catalogues (gettext ``.po`` files).

English is the source language (the message ids); every other language has one catalogue under
``locale/<locale>/LC_MESSAGES/messages.po``. The templates and the browser's JSON catalogue are both
read from those files, so one translation serves both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Catalogue", "load_catalogues", "negotiate_language",
           "parse_accept_language"]

LANGUAGES: Mapping[str, str] = {"en": "English", "zh-Hans": "简体中文"}
"""Language tag (BCP 47, as ``<html lang>`` and the ``vb_lang`` cookie carry it) -> its own name."""

DEFAULT_LANGUAGE = "en"
_LOCALE_DIRS: Mapping[str, str] = {"zh-Hans": "zh_Hans"}  # tag -> gettext locale folder
_TRADITIONAL = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")
_RANGE = re.compile(r"^(\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")


def parse_accept_language(header: str) -> list[str]:
    """The language ranges of an ``Accept-Language`` header, most wanted first; malformed parts and
    ``q=0`` are left out, ties keep their order."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _RANGE.match(tag):
            continue
        weight = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                continue
            if not 0.0 <= weight <= 1.0:
                continue
        if weight > 0.0:
            ranked.append((-weight, index, tag.lower()))
    return [tag for _, _, tag in sorted(ranked)]


def _match(tag: str) -> str | None:
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or (tag.startswith("zh-") and not tag.startswith(_TRADITIONAL)):
        return "zh-Hans"  # Simplified Chinese serves zh, zh-CN, zh-SG and zh-Hans
    return None


def negotiate_language(chosen: str | None, accept_language: str | None) -> str:
    """The language to answer in: the user's stored choice when it is one we have, else the first of
    ``Accept-Language`` we have, else English."""
    if chosen is not None and chosen in LANGUAGES:
        return chosen
    for tag in parse_accept_language(accept_language or ""):
        found = _match(tag)
        if found is not None:
            return found
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Catalogue:
    """One language's translations: message id -> translated text (only those translated)."""

    language: str
    messages: Mapping[str, str]

    def gettext(self, message: str) -> str:
        """``message`` in this language (itself when untranslated)."""
        return self.messages.get(message) or message

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """Singular or plural of a message; the catalogues hold one form per id (Chinese has no plural)."""
        return self.gettext(singular if count == 1 else plural)


def load_catalogues(locale_dir: Path) -> dict[str, Catalogue]:
    """Every language's catalogue, read from the ``.po`` files under ``locale_dir`` (English: empty)."""
    catalogues = {DEFAULT_LANGUAGE: Catalogue(DEFAULT_LANGUAGE, {})}
    for language, folder in _LOCALE_DIRS.items():
        path = locale_dir / folder / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=folder)
        messages = {str(message.id): str(message.string) for message in catalog
                    if message.id and isinstance(message.id, str) and message.string and not message.fuzzy}
        catalogues[language] = Catalogue(language, messages)
    return catalogues
