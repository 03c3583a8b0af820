"""Certificates and domains: ACM certificates, the Route 53 records of the environment's domains, CloudFront
distributions and their edge error rates.

ACM certificates are change events dated by their ``NotAfter`` (kind ``certificate-expiry``): a
certificate that expires inside an incident's window is on its timeline. CloudFront serves only
certificates from ``us-east-1`` and publishes its metrics there (``Region=Global``): ACM is read in the
environment's Region and in ``us-east-1`` unless ``certificates.regions`` says otherwise, CloudFront's
metrics always in ``us-east-1``.

- ``ListCertificates`` returns RSA 2048 certificates only unless asked for every key type: all are asked.
- Route 53 is global; a domain whose zone is hosted elsewhere (a customer's own DNS) has no record here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from .. import contracts
from . import _as_list, _aws_client, _aws_errors, _empty, _typed
from .cloudwatch import MetricQuery

BASE = contracts.EVENT_COLUMNS
CERTIFICATE_COLUMNS = {**BASE, "arn": "str", "region": "str", "domain": "str", "names": "str", "status": "str",
                       "type": "str", "not_before": "ts", "not_after": "ts", "issued_at": "ts",
                       "renewal_status": "str", "renewal_reason": "str", "renewal_updated": "ts",
                       "in_use_by": "str", "validation": "str"}
RECORD_COLUMNS = {"zone_id": "str", "zone": "str", "name": "str", "type": "str", "ttl": "Int64", "values": "str",
                  "alias_target": "str", "set_identifier": "str"}
DISTRIBUTION_COLUMNS = {"distribution_id": "str", "domain_name": "str", "status": "str", "enabled": "boolean",
                        "aliases": "str", "certificate_arn": "str", "certificate_source": "str", "origins": "str",
                        "last_modified": "ts"}
KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")
#: CloudFront's global service lives in us-east-1: its certificates and its metrics.
CLOUDFRONT_REGION = "us-east-1"
RECORD_TYPES = ("A", "AAAA", "CNAME", "CAA")
#: The edge series per distribution: label suffix, metric, statistic. 502-504 and OriginLatency exist only
#: where the distribution's additional metrics are on (an empty series otherwise).
EDGE_SERIES = (("requests", "Requests", "Sum"), ("4xx %", "4xxErrorRate", "Average"),
               ("5xx %", "5xxErrorRate", "Average"), ("502 %", "502ErrorRate", "Average"),
               ("503 %", "503ErrorRate", "Average"), ("504 %", "504ErrorRate", "Average"),
               ("origin latency ms", "OriginLatency", "Average"))


def acm_regions(cert_section: dict, aws: dict | None) -> list[str]:
    regions = cert_section.get("regions") or [(aws or {}).get("region"), CLOUDFRONT_REGION]
    return [r for r in dict.fromkeys(regions) if r]


def _names(value) -> str:
    return ", ".join(str(v) for v in value or [])


def _validation(options) -> str | None:
    """DomainValidationOptions as a compact JSON list: domain, status, record name/type/value."""
    if not options:
        return None
    return json.dumps([{"domain": o.get("DomainName"), "status": o.get("ValidationStatus"),
                        "method": o.get("ValidationMethod"),
                        "name": (o.get("ResourceRecord") or {}).get("Name"),
                        "type": (o.get("ResourceRecord") or {}).get("Type"),
                        "value": (o.get("ResourceRecord") or {}).get("Value")} for o in options], sort_keys=True)


def acm_certificates(regions: Iterable[str], *, aws: dict | None = None, clients: dict | None = None) -> pd.DataFrame:
    """Every ACM certificate of ``regions`` with its expiry, status, renewal, validation and users."""
    rows = []
    for region in _as_list(regions, "regions"):
        acm = _aws_client("acm", {**(aws or {}), "region": region}, (clients or {}).get(region))
        with _aws_errors("acm", f"ListCertificates in {region}"):
            arns = [c["CertificateArn"] for page in acm.get_paginator("list_certificates").paginate(
                Includes={"keyTypes": list(KEY_TYPES)}) for c in page.get("CertificateSummaryList") or []]
        for arn in arns:
            with _aws_errors("acm", f"DescribeCertificate {arn}"):
                c = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            renewal = c.get("RenewalSummary") or {}
            status, domain = c.get("Status"), c.get("DomainName")
            used = c.get("InUseBy") or []
            options = renewal.get("DomainValidationOptions") or c.get("DomainValidationOptions")
            message = f"ACM certificate for {domain} ({c.get('Type', '').lower().replace('_', ' ')}, {status}"
            message += f", renewal {renewal['RenewalStatus']}" if renewal.get("RenewalStatus") else ""
            message += f", in use by {len(used)}" if used else ", not in use"
            rows.append({
                "timestamp": c.get("NotAfter"), "source": "acm", "resource": domain,
                "kind": contracts.CERTIFICATE_EXPIRY, "message": message + ") ends its validity",
                "arn": arn, "region": region, "domain": domain,
                "names": _names(c.get("SubjectAlternativeNames") or [domain]), "status": status,
                "type": c.get("Type"), "not_before": c.get("NotBefore"), "not_after": c.get("NotAfter"),
                "issued_at": c.get("IssuedAt") or c.get("ImportedAt"),
                "renewal_status": renewal.get("RenewalStatus"), "renewal_reason": renewal.get("RenewalStatusReason"),
                "renewal_updated": renewal.get("UpdatedAt"), "in_use_by": _names(used),
                "validation": _validation(options)})
    if not rows:
        return _empty(CERTIFICATE_COLUMNS)
    df = _typed(pd.DataFrame(rows), CERTIFICATE_COLUMNS)
    return df.sort_values(["timestamp", "arn"], kind="stable", na_position="last").reset_index(drop=True)


def _bare(name: str) -> str:
    """A DNS name as compared here: lower case, no trailing dot, ``\\052`` (Route 53's ``*``) unescaped."""
    return str(name).replace("\\052", "*").rstrip(".").lower()


def _under(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def route53_records(domains: Iterable[str], *, zone_ids: Iterable[str] | None = None, aws: dict | None = None,
                    client=None) -> pd.DataFrame:
    """A, AAAA, CNAME and CAA records of the hosted zones holding ``domains`` (or of ``zone_ids``)."""
    r53 = _aws_client("route53", aws, client)
    wanted = [_bare(d) for d in _as_list(domains, "domains")]
    with _aws_errors("route53", "ListHostedZones"):
        zones = [z for page in r53.get_paginator("list_hosted_zones").paginate() for z in page.get("HostedZones") or []]
    ids = set(_as_list(zone_ids, "hosted_zones"))
    if ids:
        chosen = [z for z in zones if z["Id"].rsplit("/", 1)[-1] in ids]
    else:
        chosen = [z for z in zones if any(_under(d.lstrip("*."), _bare(z["Name"])) for d in wanted)]
    rows = []
    for z in chosen:
        zid = z["Id"].rsplit("/", 1)[-1]
        with _aws_errors("route53", f"ListResourceRecordSets of {z['Name']}"):
            for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zid):
                for r in page.get("ResourceRecordSets") or []:
                    if r.get("Type") not in RECORD_TYPES:
                        continue
                    alias = r.get("AliasTarget") or {}
                    rows.append({"zone_id": zid, "zone": _bare(z["Name"]), "name": _bare(r["Name"]),
                                 "type": r["Type"], "ttl": r.get("TTL"),
                                 "values": " | ".join(v["Value"] for v in r.get("ResourceRecords") or []),
                                 "alias_target": _bare(alias["DNSName"]) if alias.get("DNSName") else None,
                                 "set_identifier": r.get("SetIdentifier")})
    if not rows:
        return _empty(RECORD_COLUMNS)
    return _typed(pd.DataFrame(rows), RECORD_COLUMNS).sort_values(["name", "type"], kind="stable").reset_index(drop=True)


def cloudfront_distributions(ids: Iterable[str], *, aws: dict | None = None, client=None) -> pd.DataFrame:
    """The named distributions: domain name, aliases, viewer certificate, origins, status."""
    cf = _aws_client("cloudfront", aws, client)
    rows = []
    for dist_id in _as_list(ids, "cloudfront_distributions"):
        with _aws_errors("cloudfront", f"GetDistribution {dist_id}"):
            d = cf.get_distribution(Id=dist_id)["Distribution"]
        cfg = d.get("DistributionConfig") or {}
        viewer = cfg.get("ViewerCertificate") or {}
        rows.append({"distribution_id": d.get("Id"), "domain_name": _bare(d.get("DomainName") or ""),
                     "status": d.get("Status"), "enabled": cfg.get("Enabled"),
                     "aliases": _names(_bare(a) for a in (cfg.get("Aliases") or {}).get("Items") or []),
                     "certificate_arn": viewer.get("ACMCertificateArn") or viewer.get("IAMCertificateId"),
                     "certificate_source": viewer.get("CertificateSource"),
                     "origins": _names(o.get("DomainName") for o in (cfg.get("Origins") or {}).get("Items") or []),
                     "last_modified": d.get("LastModifiedTime")})
    return _typed(pd.DataFrame(rows), DISTRIBUTION_COLUMNS) if rows else _empty(DISTRIBUTION_COLUMNS)


def edge_queries(ids: Iterable[str]) -> list[MetricQuery]:
    """Requests, 4xx/5xx rates (%), 502/503/504 rates and origin latency of each distribution; each series'
    label is ``"<distribution id> <what>"``."""
    out = []
    for i, dist_id in enumerate(_as_list(ids, "cloudfront_distributions")):
        dims = {"DistributionId": dist_id, "Region": "Global"}
        for j, (what, metric, stat) in enumerate(EDGE_SERIES):
            out.append(MetricQuery(f"cf{i}_m{j}", "AWS/CloudFront", metric, dims, stat, f"{dist_id} {what}"))
    return out


def edge_region(aws: dict | None) -> dict:
    """The environment's ``aws`` section pointed at us-east-1, where CloudFront's metrics are."""
    return {**(aws or {}), "region": CLOUDFRONT_REGION}
