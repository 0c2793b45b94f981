"""The doctor's and the family's web app, served by the cloud beside the API it calls."""

from cloud.web._i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate_language, parse_accept_language
from cloud.web._routes import LANGUAGE_COOKIE, VENDOR_PACKAGES, default_modules_dir, install_web

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "VENDOR_PACKAGES",
    "default_modules_dir",
    "install_web",
    "negotiate_language",
    "parse_accept_language",
]
