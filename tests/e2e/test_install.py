"""`pip install` gives a working tool, as a user installs it: the wheel is built from this checkout's
files, installed into a fresh virtual environment with its dependencies resolved by pip (no
``--no-deps``, nothing borrowed from the development environment), and run from an empty folder that is
not the checkout: `forensics list`; without the `sandbox` extra, `forensics sandbox` says what to install;
with it, `forensics sandbox up --empty`, a few log events and metric data loaded with boto3, an
environment and an incident file written, `forensics validate`, `forensics run`, the record checked,
`forensics sandbox down`.

Speed: pip resolves against a wheelhouse kept between runs (``$FORENSICS_WHEELHOUSE``, default
``~/.cache/forensics/wheelhouse``), filled from the package registry the first time (minutes, once per
machine) with the versions requirements.txt pins (as constraints); later runs find every wheel there and
install offline (``--no-index --find-links``), pip still resolving every dependency itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("FORENSICS_WHEELHOUSE") or Path.home() / ".cache" / "forensics" / "wheelhouse")
pytestmark = pytest.mark.e2e


def _clean_env(**extra) -> dict:
    # PYTHONDONTWRITEBYTECODE too: with it (some CI images set it) and pip's --no-compile below, no module of the
    # fresh venv would ever be compiled once and kept; every process would compile pandas, botocore, moto and
    # the Jupyter stack from source again. A user's venv keeps what it compiles.
    drop = ("PYTHONPATH", "FORENSICS_NOTEBOOK_DIR", "FORENSICS_PARAMS_DIR", "FORENSICS_SANDBOX_DIR",
            "FORENSICS_INCIDENT", "FORENSICS_SANDBOX_AUDIT_TOKEN", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _checkout_files() -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _constraints(path: Path) -> Path:
    """requirements.txt's pins as a constraints file (no editable line, no extras)."""
    lines = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            lines.append(f"{name.split('[')[0]}=={version}")
    path.write_text("\n".join(lines) + "\n")
    return path


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
    assert "absent from the `packages` configuration" not in proc.stderr, proc.stderr[-3000:]
    (whl,) = dist.glob("forensics-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheelhouse(wheel, tmp_path_factory) -> Path:
    """Every wheel the package and its `sandbox` extra need, resolved by pip: found in the kept wheelhouse,
    else fetched from the registry into it (once)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    constraints = _constraints(tmp_path_factory.mktemp("pins") / "constraints.txt")
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--find-links", str(WHEELHOUSE), "-d", str(WHEELHOUSE),
            "-c", str(constraints), f"{wheel}[sandbox]"]
    offline = subprocess.run([*base, "--no-index"], capture_output=True, text=True, timeout=300, env=_clean_env())
    if offline.returncode != 0:
        online = subprocess.run(base, capture_output=True, text=True, timeout=1800, env=_clean_env())
        assert online.returncode == 0, online.stderr[-3000:]
    for stale in WHEELHOUSE.glob("forensics-*.whl"):  # never this package from an earlier run
        stale.unlink()
    return WHEELHOUSE


def _pip_install(py: Path, wheelhouse: Path, requirement: str) -> None:
    # --no-compile: Python compiles each module when first imported instead (a third of the install's time)
    proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--find-links",
                           str(wheelhouse), requirement], capture_output=True, text=True, timeout=900, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def venv(wheel, wheelhouse, tmp_path_factory) -> Path:
    """A fresh venv (its own pip) with the wheel installed, dependencies resolved by pip; no extra."""
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300, env=_clean_env())
    _pip_install(root / "bin" / "python", wheelhouse, str(wheel))
    return root


@pytest.fixture(scope="module")
def venv_sandbox(venv, wheel, wheelhouse) -> Path:
    """The same venv after `pip install 'forensics[sandbox]'` (the wheel with its extra)."""
    _pip_install(venv / "bin" / "python", wheelhouse, f"{wheel}[sandbox]")
    return venv


def forensics(venv: Path, *args, cwd: Path, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "forensics"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=_clean_env(**env), timeout=timeout)


def test_the_wheel_carries_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    lib = REPO / "lib"
    wanted = {p.relative_to(lib).as_posix() for package in ("forensics", "forensics_sandbox")
              for p in (lib / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert wanted - names == set()
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert f"forensics/_data/notebooks/{nb.name}" in names
    for yml in (REPO / "params").rglob("*.yaml"):
        rel = yml.relative_to(REPO / "params").as_posix()
        assert (f"forensics/_data/params/{rel}" in names) == (yml.name != "sandbox.yaml"), rel
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = {line.split()[1].split("[")[0].split(">")[0].split(";")[0].lower()
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {"click", "pyyaml", "pandas", "pyarrow", "boto3", "psycopg", "papermill", "nbconvert", "pyahocorasick",
            "jmespath", "fastjsonschema", "jinja2"} <= requires
    assert "moto" not in requires and "Provides-Extra: sandbox" in meta and "Provides-Extra: test" in meta
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[forensics.plugins]\nsandbox = forensics_sandbox.cli:commands" in entry_points


def test_list_from_the_installed_package(venv, tmp_path):
    proc = forensics(venv, "list", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line and not line.startswith(" ")]
    assert sorted(listed) == sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import forensics; print(forensics.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's
    # nothing of the development environment reaches this venv
    paths = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print('\\n'.join(sys.path))"],
                           capture_output=True, text=True, env=_clean_env(), timeout=60).stdout
    assert str(REPO) not in paths and str(Path(sys.prefix)) not in paths


def test_without_the_sandbox_extra_the_sandbox_says_what_to_install(venv, tmp_path):
    for args in (("sandbox", "up", "--empty"), ("demo",)):
        proc = forensics(venv, *args, cwd=tmp_path, timeout=120)
        assert proc.returncode == 3, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "install forensics[sandbox]" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_finds_the_shipped_example_environment(venv, tmp_path):
    (tmp_path / "i.yaml").write_text("incident: INC-9\ntitle: t\nseverity: P1\nenvironment: example-production\n"
                                     "window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}\n")
    # no AWS credentials here: preflight would stop at the caller identity (tests/e2e/test_preflight.py)
    proc = forensics(venv, "validate", "i.yaml", "--skip-preflight", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("valid: INC-9"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.yaml"]


# ---- the README's "Installing as a package", as a user runs it ----------------------------------------------
LOG_GROUP = "/ecs/shop-api"
PLANTED_ERROR = "psycopg.OperationalError: connection to server at db.shop.internal failed: timeout expired"
BASELINE_ERROR = "httpx.ReadTimeout: timed out"


def _load(status: dict, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, str]:
    """A user's own data, loaded with boto3: a load balancer (preflight checks it exists), an application log
    group whose planted errors start half-way, and the load balancer's request and 5xx counts per minute.
    Returns how many planted errors were written and the load balancer's CloudWatch dimension."""
    import boto3

    kw = {"region_name": status["region"], "endpoint_url": status["aws_endpoint_url"],
          "aws_access_key_id": "user", "aws_secret_access_key": "user"}
    logs, cw, ec2 = boto3.client("logs", **kw), boto3.client("cloudwatch", **kw), boto3.client("ec2", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{status['region']}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    arn = boto3.client("elbv2", **kw).create_load_balancer(Name="shop-alb", Subnets=subnets, Type="application"
                                                          )["LoadBalancers"][0]["LoadBalancerArn"]
    load_balancer = arn.split(":loadbalancer/", 1)[1]  # app/shop-alb/<id>: the metrics' dimension
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="web/1")
    minutes = pd.date_range(start, end - pd.Timedelta(minutes=1), freq="1min")
    onset = minutes[len(minutes) // 2]
    events, errors = [], 0
    for i, minute in enumerate(minutes):
        at = minute + pd.Timedelta(seconds=7)
        stamp = at.strftime("%Y-%m-%d %H:%M:%S,000")
        events.append({"timestamp": int(at.timestamp() * 1000),
                       "message": f"{stamp} INFO  [shop.api] [req=r{i:04d}] GET /api/orders 200"})
        # one baseline error a minute all along; six of the planted kind a minute from the onset
        for k, message in enumerate([BASELINE_ERROR] + [PLANTED_ERROR] * (6 if minute >= onset else 0)):
            err = at + pd.Timedelta(seconds=10 + k)
            events.append({"timestamp": int(err.timestamp() * 1000),
                           "message": f"{err.strftime('%Y-%m-%d %H:%M:%S,000')} ERROR [shop.api] "
                                      f"[req=e{i:04d}{k}] {message}"})
            errors += message == PLANTED_ERROR
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="web/1", logEvents=events)
    dims = [{"Name": "LoadBalancer", "Value": load_balancer}]
    data = []
    for minute in minutes:
        failing = minute >= onset
        data += [{"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": minute.to_pydatetime(),
                  "Value": 120.0, "Unit": "Count"},
                 {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Timestamp": minute.to_pydatetime(),
                  "Value": 40.0 if failing else 1.0, "Unit": "Count"}]
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[i:i + 20])
    return errors, load_balancer


@pytest.mark.sandbox
def test_the_installed_tool_as_a_user_runs_it(venv_sandbox, tmp_path):
    venv, work = venv_sandbox, tmp_path / "empty"
    work.mkdir()
    up = forensics(venv, "sandbox", "up", "--empty", cwd=work, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(forensics(venv, "sandbox", "status", "--json", cwd=work, timeout=60).stdout)
        assert status["running"] is True and status["state_dir"] == str(work / ".sandbox")
        end = pd.Timestamp.now(tz="UTC").floor("min")
        start = end - pd.Timedelta(minutes=40)
        errors, load_balancer = _load(status, start, end)

        (work / "params" / "environments").mkdir(parents=True)
        (work / "params" / "incidents").mkdir(parents=True)
        (work / "params" / "environments" / "shop.yaml").write_text(
            "name: shop\n"
            f"aws: {{region: {status['region']}, profile: null, endpoint_url: '{status['aws_endpoint_url']}'}}\n"
            f"alb: {{load_balancer: {load_balancer}}}\n"
            f"logs: {{app: ['{LOG_GROUP}']}}\n")
        incident = work / "params" / "incidents" / "shop-errors.yaml"
        incident.write_text(
            "incident: INC-SHOP-1\ntitle: Shop API errors\nseverity: P2\nenvironment: shop\n"
            f"window: {{start: '{start:%Y-%m-%dT%H:%M:%SZ}', end: '{end:%Y-%m-%dT%H:%M:%SZ}'}}\n")

        valid = forensics(venv, "validate", incident, "--only", "api-errors", cwd=work, timeout=120)
        assert valid.returncode == 0 and valid.stdout.startswith("valid: INC-SHOP-1"), valid.stdout + valid.stderr

        run = forensics(venv, "run", incident, "--only", "api-errors", cwd=work, timeout=900,
                        FORENSICS_PROGRESS_INTERVAL_S="60")
        assert run.returncode == 0, run.stdout + run.stderr[-3000:]
        record = work / run.stdout.strip().splitlines()[-1]
        assert record.is_dir() and record.is_relative_to(work / "evidence")
        findings = json.loads((record / "findings.json").read_text())["api-errors"]
        assert findings["status"] == "ok", findings
        f = findings.get("findings", findings)
        # what was loaded is what the record says: the 5xx share of the metrics, the log group's errors
        assert f["error_rate_peak"] == pytest.approx(40 / 120, abs=1e-3)
        assert "ERROR [shop.api]" in json.dumps(f["top_error_signatures"])
        # the notebook that ran is the wheel's copy, executed by the fresh venv's kernel
        nb = json.loads((record / "notebooks" / "api-errors.ipynb").read_text())
        assert nb["metadata"]["papermill"]["input_path"].startswith(str(venv))
        verify = forensics(venv, "verify", record, cwd=work, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert errors > 0
    finally:
        down = forensics(venv, "sandbox", "down", cwd=work, timeout=120)
    assert down.returncode == 0 and down.stdout.strip() == "sandbox stopped", down.stdout + down.stderr
    assert forensics(venv, "sandbox", "status", "--json", cwd=work, timeout=60).returncode == 1
