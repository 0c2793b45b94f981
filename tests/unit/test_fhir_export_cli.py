"""``vitalbridge cloud export-fhir``: every mistake in its arguments is one line and exit status 2, no traceback.
(The export itself, against a real influxd: tests/integration/test_fhir.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.registry import Patient, Registry
from cloud.store import open_store
from vitalbridge.cli import main


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    store = open_store(url)
    Registry(store.engine).add_patient(Patient("p1", "P One"))
    store.close()
    return url


@pytest.mark.parametrize(("args", "says"), [
    (["--patient", "p1", "--start", "yesterday", "--end", "2024-05-07"], "is not a FHIR date"),
    (["--patient", "p1", "--start", "2024-02-30", "--end", "2024-05-07"], "is not a real date"),
    (["--patient", "p1", "--start", "2024-05-07", "--end", "2024-05-01"], "--start must be before --end"),
    (["--patient", "nobody", "--start", "2024-05-01", "--end", "2024-05-07"], "no patient 'nobody'"),
    (["--patient", "p1", "--start", "2024-05-01", "--end", "2024-05-07", "--format", "ndjson", "--out", "FILE"],
     "is a file; NDJSON is written to a directory"),
    (["--patient", "p1", "--start", "2024-05-01", "--end", "2024-05-07", "--out", "nowhere/x.json"],
     "does not exist"),
])
def test_a_mistake_is_one_line(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], says: str) -> None:
    (tmp_path / "FILE").write_text("")
    args = [arg.replace("FILE", str(tmp_path / "FILE")).replace("nowhere", str(tmp_path / "nowhere")) for arg in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.json")]
    code = main(["cloud", "export-fhir", "--database-url", database_url, "--influx-url", "http://127.0.0.1:9",
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and says in err, err


def test_an_unreachable_influxdb_is_one_line(database_url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cloud", "export-fhir", "--database-url", database_url, "--influx-url", "http://127.0.0.1:9",
                 "--patient", "p1", "--start", "2024-05-01", "--end", "2024-05-07", "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("vitalbridge cloud export-fhir: cannot reach InfluxDB"), err
    assert list(tmp_path.glob("x.json*")) == []  # no half-written file
