"""Finding PostgreSQL's server programs, which Debian keeps off PATH in /usr/lib/postgresql/<version>/bin."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitalbridge.stack import StackError, _postgres, find_postgres_bindir


def _server(root: Path, version: str, *, complete: bool = True) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    (bindir / "initdb").write_text("")
    if complete:
        (bindir / "postgres").write_text("")
    return bindir


@pytest.fixture
def nothing_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = tmp_path / "postgresql"
    root.mkdir()
    monkeypatch.setattr(_postgres, "_SEARCH_GLOBS", (f"{root}/*/bin",))
    return root


def test_the_newest_installed_server_is_chosen(nothing_on_path: Path) -> None:
    _server(nothing_on_path, "9.6")
    newest = _server(nothing_on_path, "15")
    _server(nothing_on_path, "16", complete=False)  # client programs only: no server
    assert find_postgres_bindir() == newest


def test_no_server_is_one_clear_error_naming_the_package(nothing_on_path: Path) -> None:
    with pytest.raises(StackError, match=r"install the Debian package 'postgresql'"):
        find_postgres_bindir()


def test_a_server_on_path_comes_first(nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _server(nothing_on_path, "15")
    on_path = _server(nothing_on_path.parent / "local", "99")
    for program in ("initdb", "postgres"):
        (on_path / program).chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    assert find_postgres_bindir() == on_path
