"""`forensics demo`: the whole job on the embedded sandbox, start to finish, nothing to set up."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from forensics import runner

from .sandbox import Sandbox


def run(scenario: str = "all", out: str | Path = "evidence", jobs: int | None = None,
        echo: Callable[[str], None] = print, progress=None) -> runner.RunResult:
    with tempfile.TemporaryDirectory(prefix="forensics-demo-") as tmp:
        tmp = Path(tmp)
        echo(f"sandbox  starting (scenario {scenario}): moto server + PostgreSQL on 127.0.0.1")
        with Sandbox(tmp / "sandbox", scenario=scenario) as sb:
            env_path, incident_path = tmp / "sandbox-env.yaml", tmp / "sandbox-incident.yaml"
            sb.write_params(env_path, incident_path)
            echo(f"sandbox  up: AWS {sb.environment['aws']['endpoint_url']}, "
                 f"PostgreSQL {sb.environment['postgres']['dsn']}")
            result = runner.run(incident_path, out=out, jobs=jobs, echo=echo, progress=progress)
        echo("sandbox  stopped")
    runner.print_summary(result, echo)
    return result
