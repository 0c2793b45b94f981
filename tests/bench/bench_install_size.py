"""Installed size of each extra: a fresh venv per extra, the project installed from a copy of this tree.

Size is everything the install put into the venv's site-packages (byte-compiled files included),
less an empty venv's (pip and setuptools). ``[edge,cloud]`` is what the single dependency list
installed before the extras split (the gateway then got the cloud's packages too).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SOURCES = ("pyproject.toml", "README.md", "vitals", "device_profiles", "edge", "cloud", "simulators", "vitalbridge")
_EXTRAS = ("edge", "cloud", "sim", "edge,cloud")
_WATCHED = ("fastapi", "sqlalchemy", "alembic", "uvicorn", "matplotlib", "bleak", "serial", "scipy")


def _size_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _venv(where: Path) -> tuple[Path, Path]:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return python, Path(purelib)


def _present(python: Path) -> list[str]:
    code = f"import importlib.util as u; print(' '.join(n for n in {_WATCHED!r} if u.find_spec(n)))"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.split()


def run() -> str:
    """Install each extra into its own venv and report the sizes (MiB) and package counts."""
    with tempfile.TemporaryDirectory(prefix="vb-size-") as tmp:
        root = Path(tmp)
        source = root / "src"
        source.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.pyc")
        for name in _SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=ignore)
            else:
                shutil.copy2(path, source / name)
        _, empty_lib = _venv(root / "empty")
        baseline = _size_bytes(empty_lib)
        rows = []
        for extra in _EXTRAS:
            python, lib = _venv(root / extra.replace(",", "-"))
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            f"{source}[{extra}]"], check=True)
            listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], check=True,
                                    capture_output=True, text=True).stdout.split()
            packages = [line for line in listed if not line.startswith(("pip==", "setuptools=="))]
            size = (_size_bytes(lib) - baseline) / 2**20
            rows.append(f"| `[{extra}]` | {size:,.0f} MiB | {len(packages)} | {', '.join(_present(python)) or '-'} |")
    return "\n".join([
        "## Installed size of the extras",
        "",
        "A fresh venv per extra, `pip install <copy of this tree>[extra]`; size = site-packages after the",
        "install less an empty venv's (pip, setuptools). Packages counts the distributions installed (the",
        "project included). `[edge,cloud]` is what every install brought before the extras split.",
        "",
        "| install | size | packages | of the watched imports, present |",
        "|---|---|---|---|",
        *rows,
    ])
