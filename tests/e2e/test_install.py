"""`pip install .` gives a working tool: the wheel is built from this checkout's files, installed into a
fresh virtual environment, and run from a folder that is not the checkout.

Building and installing needs no network: the wheel is built with this interpreter's setuptools
(pinned in requirements.txt) and installed with ``--no-deps``; the fresh venv reaches the pinned
dependencies already installed here through a ``.pth`` line (the way ``--system-site-packages``
reaches a system's), so the package's own files all come from the wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FORENSICS_NOTEBOOK_DIR", "FORENSICS_PARAMS_DIR", "VIRTUAL_ENV")}
    return {**env, **extra}


def _checkout_files() -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    with tarfile.open(src / "src.tar", "w") as tar:  # a copy: the build leaves build/ and *.egg-info
        for f in _checkout_files():
            tar.add(REPO / f, arcname=f)
    with tarfile.open(src / "src.tar") as tar:
        tar.extractall(src / "forensics", filter="data")
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--wheel-dir", str(dist), str(src / "forensics")],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = dist.glob("forensics-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    py = root / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_pinned_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_the_wheel_carries_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    lib = REPO / "lib"
    wanted = {p.relative_to(lib).as_posix() for p in (lib / "forensics").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert wanted - names == set()
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert f"forensics/_data/notebooks/{nb.name}" in names
    for yml in (REPO / "params").rglob("*.yaml"):
        rel = yml.relative_to(REPO / "params").as_posix()
        assert (f"forensics/_data/params/{rel}" in names) == (yml.name != "sandbox.yaml"), rel
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = {line.split()[1].split("[")[0].split(">")[0].lower()
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {"click", "pyyaml", "pandas", "pyarrow", "boto3", "psycopg", "papermill", "nbconvert"} <= requires
    assert "moto" not in requires and "Provides-Extra: sandbox" in meta and "Provides-Extra: test" in meta


def test_list_from_the_installed_package(venv, tmp_path):
    proc = subprocess.run([str(venv / "bin" / "forensics"), "list"], capture_output=True, text=True, cwd=tmp_path,
                          env=_clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line and not line.startswith(" ")]
    assert sorted(listed) == sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import forensics; print(forensics.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's


def test_validate_finds_the_shipped_example_environment(venv, tmp_path):
    (tmp_path / "i.yaml").write_text("incident: INC-9\ntitle: t\nseverity: P1\nenvironment: example-production\n"
                                     "window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}\n")
    proc = subprocess.run([str(venv / "bin" / "forensics"), "validate", "i.yaml"], capture_output=True, text=True,
                          cwd=tmp_path, env=_clean_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("valid: INC-9"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.yaml"]


@pytest.mark.sandbox
def test_run_from_the_installed_package(venv, sandbox_params, tmp_path):
    proc = subprocess.run([str(venv / "bin" / "forensics"), "run", str(sandbox_params["incident"]),
                           "--only", "api-errors", "--out", "ev"],
                          capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = tmp_path / proc.stdout.strip().splitlines()[-1]
    findings = json.loads((record / "findings.json").read_text())
    assert findings["api-errors"]["status"] == "ok"
    assert findings["api-errors"]["onset"] is not None
    assert "QueuePool" in json.dumps(findings["api-errors"]["top_error_signatures"])
    # the notebook that ran is the wheel's copy, executed by the fresh venv's kernel
    nb = json.loads((record / "notebooks" / "api-errors.ipynb").read_text())
    assert nb["metadata"]["papermill"]["input_path"].startswith(str(venv))
    verify = subprocess.run([str(venv / "bin" / "forensics"), "verify", str(record)], capture_output=True,
                            text=True, cwd=tmp_path, env=_clean_env(), timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
