"""Certificates and domains: ACM, Route 53, CloudFront and its edge metrics (001 §3i, §3k; 000 chunk-load errors)."""

from __future__ import annotations

from .. import contracts
from ..sources import certificates, cloudwatch
from ..sources.call import Call
from .core import METRICS, Capture, declare, events


def _section(inc) -> dict:
    return inc.env["certificates"]


def _edge_ids(inc) -> list[str]:
    return list(_section(inc)["cloudfront_distributions"])


def _acm_call(inc) -> Call:
    regions = certificates.acm_regions(_section(inc), inc.aws)
    return Call(None, {"regions": regions, "Includes": {"keyTypes": list(certificates.KEY_TYPES)}},
                lambda: certificates.acm_certificates(regions, aws=inc.aws))


def _records_call(inc) -> Call:
    domains, zones = _section(inc)["domains"], _section(inc).get("hosted_zones")
    return Call(None, {"domains": domains, "hosted_zones": zones, "types": list(certificates.RECORD_TYPES)},
                lambda: certificates.route53_records(domains, zone_ids=zones, aws=inc.aws))


def _distributions_call(inc) -> Call:
    ids = _edge_ids(inc)
    return Call(None, {"Ids": ids}, lambda: certificates.cloudfront_distributions(ids, aws=inc.aws))


def _edge_metrics_call(inc) -> Call:
    window = inc.context_window
    return cloudwatch.metric_data_call(certificates.edge_queries(_edge_ids(inc)), window, window.period(),
                                       aws=certificates.edge_region(inc.aws)).recorded_as(
        before={"region": certificates.CLOUDFRONT_REGION})


events("acm_certificates", "acm:ListCertificates+DescribeCertificate", ["certificates"], _acm_call,
       certificates.CERTIFICATE_COLUMNS, source="acm",
       doc="Every ACM certificate (environment Region and us-east-1): expiry, status, renewal, validation records, "
           "in use by; dated by NotAfter on the timeline.")
events("route53_records", "route53:ListHostedZones+ListResourceRecordSets", ["certificates"], _records_call,
       certificates.RECORD_COLUMNS, source="route53",
       doc="A, AAAA, CNAME and CAA records of the hosted zones holding the environment's domains.")
events("cloudfront_distributions", "cloudfront:GetDistribution", ["certificates.cloudfront_distributions"],
       _distributions_call, certificates.DISTRIBUTION_COLUMNS, source="cloudfront",
       doc="The named CloudFront distributions: aliases, viewer certificate, origins, status.")
declare(Capture("cloudfront_edge_metrics", "cloudwatch", "GetMetricData", _edge_metrics_call,
                ("certificates.cloudfront_distributions",), contracts.METRIC_COLUMNS, METRICS,
                doc="CloudFront requests, 4xx/5xx rates, 502/503/504 rates and origin latency per distribution "
                    "(us-east-1, Region=Global)."))
