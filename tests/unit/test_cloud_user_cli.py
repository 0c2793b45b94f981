"""`vitalbridge cloud user ...`: the first admin and password changes from a shell, passwords never in argv."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from cloud.auth import Identity, LoginFailed
from cloud.store import open_store


def _user(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vitalbridge.cli", "cloud", "user", "--database-url",
                           f"sqlite:///{db}", *args], input=stdin, capture_output=True, text=True, timeout=120,
                          check=False)


def test_add_list_passwd_disable(tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    added = _user(db, "add", "root", "--role", "admin", "--password-stdin", stdin="first long password\n")
    assert (added.returncode, added.stdout.strip()) == (0, "added root (admin)"), added.stderr
    assert _user(db, "passwd", "root", "--password-stdin", stdin="second long password\n").returncode == 0
    assert _user(db, "disable", "root").returncode == 0
    listed = _user(db, "list")
    assert listed.stdout.splitlines() == ["root\tadmin\tdisabled"]
    store = open_store(f"sqlite:///{db}")
    try:
        identity = Identity(store.engine)
        now = dt.datetime.now(dt.UTC)
        assert _user(db, "enable", "root").returncode == 0
        assert identity.authenticate("root", "second long password", client="cli", now=now).username == "root"
        try:
            identity.authenticate("root", "first long password", client="cli", now=now)
        except LoginFailed:
            pass
        else:
            raise AssertionError("the old password still works")
    finally:
        store.close()


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    weak = _user(db, "add", "root", "--role", "admin", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2
    assert weak.stderr.strip() == "vitalbridge cloud user add: the password must be at least 10 characters"
    unknown = _user(db, "disable", "nobody")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "vitalbridge cloud user disable: no user 'nobody'"
    # There is no way to pass a password on the command line.
    argv = _user(db, "add", "root", "--role", "admin", "--password", "visible to ps")
    assert argv.returncode == 2 and "unrecognized arguments" in argv.stderr
