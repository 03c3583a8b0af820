"""Parameter files: valid ones load; every kind of bad one is refused with one clear line."""

import textwrap

import pandas as pd
import pytest

from forensics.errors import ParamsError
from forensics.params import load_incident

ENV = textwrap.dedent("""\
    name: production
    aws: {region: eu-west-1, profile: null, endpoint_url: null}
    alb: {load_balancer: app/scr-production-alb/4361f80389f5693e}
    ecs: {cluster: scr-production, services: [scr-api-production]}
    rds: {instance: scr-production-postgres}
    postgres: {dsn_env: FORENSICS_PG_DSN}
    logs: {app: [/ecs/scr-api-production]}
""")


def recent(hours_ago: float) -> str:
    return (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_text(**over) -> str:
    fields = {
        "incident": "INC-2026-0530", "title": "Wide 500s after deploy", "severity": "P1",
        "environment": "env.yaml", "window": f"{{start: {recent(3)}, end: {recent(1)}}}",
        "notebooks": "[db-connections, api-errors]",
    }
    fields.update(over)
    return "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "env.yaml").write_text(ENV)

    def write(text, env=None):
        if env is not None:
            (tmp_path / "env.yaml").write_text(env)
        p = tmp_path / "incident.yaml"
        p.write_text(text)
        return p

    return write


def test_valid_incident_resolves_environment_and_window(files):
    inc = load_incident(files(incident_text()), known_notebooks=["db-connections", "api-errors"])
    assert inc.incident == "INC-2026-0530"
    assert inc.environment["ecs"]["services"] == ["scr-api-production"]
    assert inc.window.start.tzinfo is not None and str(inc.window.start.tz) == "UTC"
    assert inc.window.duration == pd.Timedelta(hours=2)
    assert inc.notebooks == ["db-connections", "api-errors"]
    assert inc.as_dict()["environment"]["name"] == "production"


def test_timestamps_are_not_turned_into_naive_datetimes(files):
    inc = load_incident(files(incident_text(window="{start: '2026-11-01T10:00:00+02:00', end: 2026-11-01T12:00:00Z}")))
    assert inc.window.start == pd.Timestamp("2026-11-01T08:00:00Z")


@pytest.mark.parametrize("change, expected", [
    ({"title": None}, "missing field title"),
    ({"owner": "alice"}, "unknown field owner"),
    ({"severity": "urgent"}, "severity must be one of P0, P1, P2, P3"),
    ({"window": f"{{start: {recent(1)}, end: {recent(3)}}}"}, "is not after start"),
    ({"window": "{start: 2026-11-01T10:00:00, end: 2026-11-01T12:00:00Z}"}, "has no timezone"),
    ({"window": "{start: yesterday, end: 2026-11-01T12:00:00Z}"}, "not an ISO-8601 timestamp"),
    ({"window": "{start: 2024-01-01T00:00:00Z, end: 2024-01-01T03:00:00Z}"}, "older than CloudWatch metrics retention"),
    ({"window": "{start: 2025-07-01T00:00:00Z, end: 2026-11-20T00:00:00Z}"}, "longer than CloudWatch metrics retention"),
    ({"notebooks": "[db-connections, dns-checks]"}, "unknown notebook 'dns-checks'"),
    ({"environment": "nowhere.yaml"}, "no such file"),
    ({"incident": "'INC 1; rm -rf /'"}, "must be letters, digits"),
])
def test_bad_incident_files_are_refused_with_one_line(files, change, expected):
    with pytest.raises(ParamsError) as err:
        load_incident(files(incident_text(**change)), known_notebooks=["db-connections", "api-errors"])
    msg = str(err.value)
    assert expected in msg
    assert "\n" not in msg
    assert err.value.exit_code == 2


def test_malformed_yaml_names_the_line(files):
    with pytest.raises(ParamsError, match=r"malformed YAML: line \d+"):
        load_incident(files("incident: [unclosed\ntitle: x\n"))


@pytest.mark.parametrize("env_change, expected", [
    (ENV.replace("rds: {instance: scr-production-postgres}", "rds: {replica: x}"), "missing field rds.instance"),
    (ENV + "cloudtrail: {bucket: My_Bucket}\n", "cloudtrail.bucket must be an S3 bucket name"),
    (ENV + "cloudtrail: {bucket: trail-bucket, prefix: s3://trail-bucket/x}\n", "cloudtrail.prefix is a key prefix"),
    (ENV.replace("alb: {", "alb: {access_logs: {prefix: lb}, "), "missing field alb.access_logs.bucket"),
    (ENV.replace("region: eu-west-1", "region: eu-west-1, colour: red"), "unknown field aws.colour"),
    (ENV.replace("{dsn_env: FORENSICS_PG_DSN}", "{dsn: 'host=db user=x password=hunter2'}"), "contains a password"),
    (ENV.replace("{dsn_env: FORENSICS_PG_DSN}", "{dsn: 'postgresql://x:hunter2@db/app'}"), "contains a password"),
    (ENV.replace("services: [scr-api-production]", "services: scr-api-production"), "ecs.services must be list"),
    (ENV + "certificates: {cloudfront_distributions: [E1]}\n", "missing field certificates.domains"),
    (ENV + "certificates: {domains: ['https://app.example.com']}\n", "certificates.domains must list domain names"),
    (ENV + "certificates: {domains: [app.example.com], regions: [us-east-1, '']}\n", "certificates.regions must be"),
    (ENV + "backups: {bucket: s3://backups}\n", "backups.bucket must be an S3 bucket name"),
    (ENV + "backups: {bucket: scr-backups, prefix: /pg_dump}\n", "backups.prefix is a key prefix"),
    (ENV + "backups: {retention_log_groups: /ecs/worker}\n", "backups.retention_log_groups must be list"),
])
def test_bad_environment_files_are_refused(files, env_change, expected):
    with pytest.raises(ParamsError, match=expected):
        load_incident(files(incident_text(), env=env_change))


def test_only_name_and_aws_are_required(files):
    """A security-only investigation: no ALB, ECS, RDS or application logs."""
    env = "name: security-only\naws: {region: eu-west-1}\ncloudtrail: {bucket: org-trail-logs, prefix: trail}\n"
    inc = load_incident(files(incident_text(), env=env), known_notebooks=["db-connections", "api-errors"])
    assert set(inc.environment) == {"name", "aws", "cloudtrail"}
    with pytest.raises(ParamsError, match="missing field aws"):
        load_incident(files(incident_text(), env="name: x\n"))


def test_backups_and_certificates_sections_are_optional_and_checked(files):
    env = (ENV + "backups: {vault: v, bucket: scr-backups, prefix: pg_dump/, retention_log_groups: [/ecs/w], "
           "lookback_hours: 72}\ncertificates: {domains: [app.example.com, '*.example.com'], "
           "cloudfront_distributions: [E1ABC], warn_days: 21}\n")
    inc = load_incident(files(incident_text(), env=env), known_notebooks=["db-connections", "api-errors"])
    assert inc.environment["backups"]["lookback_hours"] == 72
    assert inc.environment["certificates"]["domains"] == ["app.example.com", "*.example.com"]


def test_environment_by_name_lists_the_known_ones(tmp_path, monkeypatch):
    p = tmp_path / "i.yaml"
    p.write_text(incident_text(environment="no-such-env"))
    with pytest.raises(ParamsError, match="no environment named 'no-such-env' \\(known: .*example-production"):
        load_incident(p)
