"""``pip install vitalbridge[edge]`` alone makes a working gateway, without the cloud's or the testers' packages.

A fresh virtual environment gets the project from a copy of this tree with only the ``[edge]``
extra (packages come from pip's cache and configured indexes); in it the gateway imports, its
command line answers, and an agent is built from the sample config, while FastAPI, SQLAlchemy,
Alembic, uvicorn and matplotlib cannot even be imported, and building the agent loads neither the
simulators nor the cloud.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
_SOURCES = ("pyproject.toml", "README.md", "vitals", "device_profiles", "edge", "cloud", "simulators", "vitalbridge")

CHECK = textwrap.dedent("""
    import dataclasses, importlib.util, pathlib, sys

    for absent in ("fastapi", "sqlalchemy", "alembic", "uvicorn", "matplotlib"):
        assert importlib.util.find_spec(absent) is None, f"{absent} is installed"

    import edge.agent
    from edge.config import load_config
    from edge.gateway import build_agent

    config = load_config(pathlib.Path(sys.argv[1]))
    agent = build_agent(dataclasses.replace(config, spool=sys.argv[2]))
    assert isinstance(agent, edge.agent.EdgeAgent)
    assert sorted(agent.devices) == ["cuff-1", "meter-1", "oximeter-1"], sorted(agent.devices)
    loaded = sorted(name for name in ("simulators", "cloud") if name in sys.modules)
    assert not loaded, f"the gateway loaded {loaded}"
    print("gateway ok")
""")


def _copy_tree(target: Path) -> Path:
    """The project's installable files, without build leftovers, caches or the development venv."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".venv", "*.pyc")
    target.mkdir(parents=True)
    for name in _SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=cwd, timeout=900,
                          check=False)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_edge_extra_alone_runs_the_gateway(tmp_path: Path) -> None:
    source = _copy_tree(tmp_path / "src")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[edge]")

    assert "gateway ok" in _run(python, "-c", CHECK, ROOT / "deploy" / "gateway.example.yaml", tmp_path / "spool.db")
    usage = _run(venv / "bin" / "vitalbridge", "edge", "--help", cwd=tmp_path)
    assert "run" in usage and "status" in usage
    cloud = subprocess.run([str(venv / "bin" / "vitalbridge"), "cloud", "run"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120, check=False)
    assert cloud.returncode == 2
    assert cloud.stderr.strip().endswith("which this install lacks: pip install 'vitalbridge[cloud]'"), cloud.stderr
