"""Backups and certificates sources against a real moto server on loopback, with the sandbox's handlers
for what moto lacks (AWS Backup ListBackupJobs, ACM certificates with a past): RDS snapshots of every type,
backup jobs filtered and paged, the dumps in S3, ACM in two Regions, Route 53 records, CloudFront."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto.backends import get_backend

from forensics import contracts
from forensics.errors import ReadOnlyViolation
from forensics_sandbox import moto_ext
from forensics_sandbox.moto_server import ACCOUNT_ID, CREDENTIALS
from forensics.sources import TS_DTYPE, backups, certificates
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
T0 = pd.Timestamp("2026-11-23T10:00:00Z")
H = pd.Timedelta(hours=1)
DB = "test-backups-db"
VAULT = "test-backups-vault"


@pytest.fixture(scope="module")
def aws(aws_env):
    moto_ext.install()
    return aws_env


@pytest.fixture(scope="module")
def jobs(aws, moto_server):
    backend = moto_server.backend("backup")
    backend.__dict__.pop("forensics_backup_jobs", None)
    arn = f"arn:aws:rds:eu-west-1:{ACCOUNT_ID}:db:{DB}"
    for k in range(5):  # nightly, the last two failed
        moto_ext.add_backup_job(backend, vault=VAULT, resource_arn=arn, resource_type="RDS",
                                  created=T0 - k * 24 * H, state="FAILED" if k < 2 else "COMPLETED",
                                  completed=T0 - k * 24 * H + H, status_message="denied" if k < 2 else None)
    moto_ext.add_backup_job(backend, vault="other-vault", resource_arn="arn:aws:s3:::docs", resource_type="S3",
                              created=T0 - H, state="COMPLETED", completed=T0)
    return backend


def test_list_backup_jobs_filters_and_pages_as_aws_backup_does(jobs, moto_server):
    c = moto_server.client("backup")
    got = c.list_backup_jobs(ByBackupVaultName=VAULT, MaxResults=2)
    assert len(got["BackupJobs"]) == 2 and got["NextToken"]
    assert got["BackupJobs"][0]["CreationDate"] > got["BackupJobs"][1]["CreationDate"]  # newest first
    pages = list(c.get_paginator("list_backup_jobs").paginate(ByBackupVaultName=VAULT, PaginationConfig={"PageSize": 2}))
    assert sum(len(p["BackupJobs"]) for p in pages) == 5
    assert len(c.list_backup_jobs(ByState="FAILED")["BackupJobs"]) == 2
    recent = c.list_backup_jobs(ByCreatedAfter=(T0 - 30 * H).to_pydatetime(), ByCreatedBefore=T0.to_pydatetime())
    assert {j["BackupVaultName"] for j in recent["BackupJobs"]} == {VAULT, "other-vault"} and len(recent["BackupJobs"]) == 3
    with pytest.raises(ClientError, match="Invalid state"):
        c.list_backup_jobs(ByState="BROKEN")


def test_backup_jobs_source_reads_the_lookback_of_one_vault_as_change_events(jobs, aws):
    df = backups.backup_jobs(IncidentWindow(T0 - 48 * H, T0 + H), vault=VAULT, aws=aws)
    assert list(df.columns[:5]) == list(contracts.EVENT_COLUMNS) and df["timestamp"].dtype == TS_DTYPE
    assert df["state"].tolist() == ["COMPLETED", "FAILED", "FAILED"]  # oldest first
    assert df["kind"].tolist() == [contracts.BACKUP, contracts.BACKUP_FAILED, contracts.BACKUP_FAILED]
    assert df["message"].iloc[-1] == f"AWS Backup job of RDS {DB}: FAILED: denied"
    with pytest.raises(ReadOnlyViolation):
        from forensics import _aws

        _aws.client("backup", aws).start_backup_job(BackupVaultName=VAULT, ResourceArn="x", IamRoleArn="y")


def test_rds_snapshots_of_every_type_with_status_and_progress(aws, moto_server):
    rds = moto_server.client("rds")
    rds.create_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t4g.micro", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="u", MasterUserPassword="sandbox-not-a-secret")  # noqa: S106
    backend = moto_server.backend("rds")
    for sid, kind, status in (("awsbackup:job-1", "awsbackup", "available"), ("pre-migration", "manual", "creating"),
                              ("broken", "manual", "failed")):
        snap = backend.create_db_snapshot(DB, sid, snapshot_type=kind)
        snap.status = status
        if status == "creating":
            snap.percent_progress = 35
    df = backups.rds_snapshots(DB, aws=aws)
    by_id = df.set_index("snapshot_id")
    assert {"awsbackup:job-1", "pre-migration", "broken"} <= set(by_id.index)
    assert (by_id["snapshot_type"] == "automated").sum() == 1  # moto's snapshot at creation
    assert by_id.loc["pre-migration", "progress"] == 35 and by_id.loc["pre-migration", "status"] == "creating"
    assert by_id.loc["broken", "kind"] == contracts.BACKUP_FAILED
    assert by_id.loc["awsbackup:job-1", "kind"] == contracts.BACKUP


def test_backup_objects_lists_the_prefix_and_stops_at_its_cap(aws, moto_server):
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="test-backups-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in ("pg_dump/1.dump", "pg_dump/2.dump", "pg_dump/3.dump", "other/x"):
        s3.put_object(Bucket="test-backups-bucket", Key=key, Body=b"PGDMP")
    df = backups.backup_objects("test-backups-bucket", "pg_dump/", aws=aws)
    assert sorted(df["key"]) == ["pg_dump/1.dump", "pg_dump/2.dump", "pg_dump/3.dump"] and not df.attrs["truncated"]
    assert (df["size_bytes"] == 5).all() and df["last_modified"].dtype == TS_DTYPE
    capped = backups.backup_objects("test-backups-bucket", "pg_dump/", aws=aws, max_objects=2)
    assert len(capped) == 2 and capped.attrs["truncated"]


def _edge_client(moto_server, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=moto_server.endpoint_url, **CREDENTIALS)


def test_acm_certificates_in_two_regions_with_their_planted_state(aws, moto_server):
    edge = _edge_client(moto_server, "acm")
    wl = edge.request_certificate(DomainName="wl.test-certs.com", SubjectAlternativeNames=["wl.test-certs.com",
                                  "p.partner-certs.com"], ValidationMethod="DNS")["CertificateArn"]
    asked = edge.request_certificate(DomainName="new.test-certs.com", ValidationMethod="DNS")["CertificateArn"]
    untouched = moto_server.client("acm").request_certificate(DomainName="api.test-certs.com",
                                                              ValidationMethod="DNS")["CertificateArn"]
    backend = get_backend("acm")[ACCOUNT_ID]["us-east-1"]
    rec = moto_ext.validation_record("p.partner-certs.com", "abc123")
    moto_ext.set_certificate(backend, wl, status="ISSUED", not_before=T0 - 356 * 24 * H, not_after=T0 + 9 * 24 * H,
                            renewal_status="PENDING_VALIDATION", renewal_updated=T0 - 20 * 24 * H,
                            validation={"p.partner-certs.com": ("PENDING_VALIDATION", rec)})
    moto_ext.set_in_use(backend, wl, "arn:aws:cloudfront::1:distribution/E1")
    moto_ext.set_certificate(backend, asked, status="PENDING_VALIDATION", not_before=None, not_after=None)
    df = certificates.acm_certificates(["eu-west-1", "us-east-1"], aws=aws).set_index("arn")
    assert {wl, asked, untouched} <= set(df.index)
    assert df.loc[wl, "timestamp"] == T0 + 9 * 24 * H and df.loc[wl, "kind"] == contracts.CERTIFICATE_EXPIRY
    assert df.loc[wl, "renewal_status"] == "PENDING_VALIDATION" and df.loc[wl, "in_use_by"].endswith("E1")
    assert set(df.loc[wl, "names"].split(", ")) == {"wl.test-certs.com", "p.partner-certs.com"}
    assert df.loc[wl, "region"] == "us-east-1"
    assert '"name": "_abc123.p.partner-certs.com."' in df.loc[wl, "validation"]
    assert pd.isna(df.loc[asked, "not_after"]) and df.loc[asked, "status"] == "PENDING_VALIDATION"
    assert df.loc[untouched, "region"] == "eu-west-1"  # moto's own answer, left as it is
    listed = edge.list_certificates(CertificateStatuses=["PENDING_VALIDATION"])["CertificateSummaryList"]
    assert asked in {c["CertificateArn"] for c in listed} and wl not in {c["CertificateArn"] for c in listed}


def test_route53_records_of_the_zones_holding_the_domains_and_cloudfront(aws, moto_server):
    r53 = moto_server.client("route53")
    zid = r53.create_hosted_zone(Name="test-certs.com", CallerReference="t1")["HostedZone"]["Id"]
    r53.create_hosted_zone(Name="unrelated-certs.org", CallerReference="t2")
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": n, "Type": t, "TTL": 300, "ResourceRecords": [{"Value": v}]}}
        for n, t, v in (("wl.test-certs.com", "CNAME", "d1.cloudfront.net"), ("test-certs.com", "CAA",
                                                                              '0 issue "amazon.com"'),
                        ("mail.test-certs.com", "MX", "10 mx.test-certs.com"))]})
    df = certificates.route53_records(["wl.test-certs.com"], aws=aws)
    assert set(df["zone"]) == {"test-certs.com"}
    assert set(zip(df["name"], df["type"])) == {("wl.test-certs.com", "CNAME"), ("test-certs.com", "CAA")}
    assert df.set_index("type").loc["CNAME", "values"] == "d1.cloudfront.net"
    cf = _edge_client(moto_server, "cloudfront")
    made = cf.create_distribution(DistributionConfig={
        "CallerReference": "test-certs", "Comment": "", "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": ["wl.test-certs.com"]},
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "origin.test-certs.com",
                                              "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                     "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https",
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0},
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "MinTTL": 0},
        "ViewerCertificate": {"ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
                              "SSLSupportMethod": "sni-only"}})["Distribution"]
    d = certificates.cloudfront_distributions([made["Id"]], aws=aws)
    assert d["aliases"].tolist() == ["wl.test-certs.com"] and d["certificate_arn"].tolist() == [
        "arn:aws:acm:us-east-1:1:certificate/x"]
    assert d["domain_name"].iloc[0] == made["DomainName"].rstrip(".").lower()
    assert [q.dimensions for q in certificates.edge_queries([made["Id"]])][0] == {"DistributionId": made["Id"],
                                                                                 "Region": "Global"}
