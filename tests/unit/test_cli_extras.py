"""A command whose extra is not installed says which one to install, in one line, instead of a traceback."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from vitalbridge import cli
from vitalbridge.commands import profiles as profiles_commands


def test_the_message_names_the_extra_that_brings_the_package() -> None:
    assert cli.missing_package_message(ModuleNotFoundError("No module named 'fastapi'", name="fastapi")) == (
        "this command needs the package 'fastapi', which this install lacks: pip install 'vitalbridge[cloud]'")
    assert cli.missing_package_message(ModuleNotFoundError("x", name="ruamel.yaml")).endswith("'vitalbridge[edge]'")
    assert cli.missing_package_message(ModuleNotFoundError("x", name="matplotlib.pyplot")).endswith(
        "'vitalbridge[sim]'")


def test_a_command_that_hits_a_missing_package_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: Any) -> None:
    def needs_fastapi(_args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setattr(profiles_commands, "_list", needs_fastapi)  # a command that imports lazily
    assert cli.main(["profiles", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vitalbridge profiles: this command needs the package 'fastapi', which this install lacks: "
                   "pip install 'vitalbridge[cloud]'"]


def test_a_group_whose_module_cannot_be_imported_is_listed_and_explains(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: Any) -> None:
    real_import = cli.importlib.import_module

    def without_ruamel(name: str) -> Any:
        if name == "vitalbridge.commands.edge":
            raise ModuleNotFoundError("No module named 'ruamel'", name="ruamel")
        return real_import(name)

    monkeypatch.setattr(cli.importlib, "import_module", without_ruamel)
    assert cli.main(["edge", "run", "--config", "x.yaml"]) == 2
    assert capsys.readouterr().err.strip() == ("vitalbridge edge: this command needs the package 'ruamel', which "
                                               "this install lacks: pip install 'vitalbridge[edge]'")
