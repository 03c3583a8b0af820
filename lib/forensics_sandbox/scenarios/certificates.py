"""Scenario "certificates": a white-label certificate that cannot renew, a partner CNAME left behind, an
imported certificate that expired during the incident, and chunk-load errors at the edge.

The story (001 §3i, §3k; 000 "frontend chunk-load errors"), T0 the primary scenario's deploy:

- CloudFront ``web`` serves ``app.scr-platform.com`` (certificate ``*.scr-platform.com``, fine). The
  frontend deploy at T0 removed the previous build's chunks while browsers still asked for them: its 4xx
  rate climbs from about 1 % to a peak of 18.5 % at T0+12 min and falls back by T0+25 min.
- CloudFront ``white-label`` serves ``custom.scr-platform.com`` and two partner domains,
  ``portal.partner-acme.com`` and ``shop.partner-acme.com``, on one ACM certificate (us-east-1) that ends
  in 9 days: its renewal is stuck at PENDING_VALIDATION because the validation CNAME of
  ``portal.partner-acme.com`` was deleted from the ``partner-acme.com`` zone, whose apex also carries a CAA
  record that allows only Let's Encrypt. ``shop.partner-acme.com`` still points at
  ``old-custom.scr-platform.com`` (a distribution retired last year), not at ``custom.scr-platform.com``.
- CloudFront ``status`` serves ``status.scr-platform.com`` on a certificate a partner imported a year ago,
  which expired at T0+8 min (imported certificates are never renewed by ACM): its requests drop.
- A certificate requested for ``reports.globex-partner.com`` waits for validation in a zone hosted elsewhere.
- ``api.scr-platform.com`` (eu-west-1, on the ALB) is fine.
"""

from __future__ import annotations

import boto3
import numpy as np
import pandas as pd

from .. import moto_ext as ext
from ..moto_server import CREDENTIALS
from .played import Played, register
from .common import MIN, incident_fields, iso, put_metrics, timeline

SEED = 20261203
EDGE_REGION = "us-east-1"
ZONE, PARTNER_ZONE = "scr-platform.com", "partner-acme.com"
WEB, WHITE_LABEL, STATUS = "app.scr-platform.com", "custom.scr-platform.com", "status.scr-platform.com"
PORTAL, SHOP = "portal.partner-acme.com", "shop.partner-acme.com"
PENDING_NEW, API = "reports.globex-partner.com", "api.scr-platform.com"
OLD_TARGET = "old-custom.scr-platform.com"
DAY = pd.Timedelta(days=1)
WEB_4XX_PEAK = 18.5
CAA = '0 issue "letsencrypt.org"'


def _client(sb, service: str, region: str):
    return boto3.client(service, region_name=region, endpoint_url=sb.endpoint_url, **CREDENTIALS)


def _request(acm, domain: str, sans=()) -> str:
    return acm.request_certificate(DomainName=domain, SubjectAlternativeNames=[domain, *sans],
                                   ValidationMethod="DNS")["CertificateArn"]


def _distribution(cf, ref: str, aliases: list[str], cert_arn: str) -> dict:
    config = {"CallerReference": ref, "Comment": ref, "Enabled": True,
              "Aliases": {"Quantity": len(aliases), "Items": aliases},
              "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": "scr-production-alb.eu-west-1.elb.amazonaws.com",
                                                    "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                           "OriginProtocolPolicy": "https-only"}}]},
              "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https",
                                       "TrustedSigners": {"Enabled": False, "Quantity": 0},
                                       "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                       "MinTTL": 0},
              "ViewerCertificate": {"ACMCertificateArn": cert_arn, "SSLSupportMethod": "sni-only",
                                    "MinimumProtocolVersion": "TLSv1.2_2021"}}
    return cf.create_distribution(DistributionConfig=config)["Distribution"]


def _zone(r53, name: str, records: list[tuple[str, str, str | dict]]) -> str:
    zid = r53.create_hosted_zone(Name=name, CallerReference=f"sandbox-{name}")["HostedZone"]["Id"].rsplit("/", 1)[-1]
    changes = []
    for rname, rtype, value in records:
        rrset = {"Name": rname, "Type": rtype}
        if isinstance(value, dict):
            rrset["AliasTarget"] = value
        else:
            rrset.update(TTL=300, ResourceRecords=[{"Value": value}])
        changes.append({"Action": "CREATE", "ResourceRecordSet": rrset})
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": changes})
    return zid


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        self.end = t["end"]
        self.expiry = self.end + 9 * DAY + 3 * pd.Timedelta(hours=1)  # the white-label certificate's NotAfter
        self.status_expiry = t["deploy"] + 8 * MIN
        rng = np.random.default_rng(seed)
        self.minutes = m = pd.date_range(t["start"], self.end, freq="min", inclusive="left")
        n = len(m)
        k = ((m - t["deploy"]) / MIN).to_numpy(dtype=float)
        peak_at = 12.0
        bump = np.where((k >= 0) & (k <= peak_at), k / peak_at,
                        np.where((k > peak_at) & (k < 25), 1 - (k - peak_at) / 13.0, 0.0))
        self.web_4xx = np.round(1.0 + rng.normal(0, 0.15, n).clip(-0.4, 0.4) + (WEB_4XX_PEAK - 1.0) * bump, 3)
        self.peak_at = t["deploy"] + pd.Timedelta(minutes=peak_at)
        self.web_4xx[m == self.peak_at] = WEB_4XX_PEAK
        self.web_5xx = np.round(np.abs(rng.normal(0.08, 0.03, n)), 3)
        self.web_requests = np.round(3000 + rng.normal(0, 120, n))
        self.wl_4xx = np.round(np.abs(rng.normal(2.0, 0.3, n)), 3)
        self.wl_5xx = np.round(np.abs(rng.normal(0.1, 0.04, n)), 3)
        self.wl_requests = np.round(900 + rng.normal(0, 60, n))
        self.status_requests = np.where(m < self.status_expiry, np.round(400 + rng.normal(0, 20, n)), 3.0)


def load_acm(sb, plan: Plan) -> tuple[dict[str, str], dict[str, dict]]:
    """The certificates (their ARNs) and the validation record each name asks for."""
    acm_edge, acm_local = _client(sb, "acm", EDGE_REGION), _client(sb, "acm", sb.region)
    edge = ext.backend("acm", sb.account_id, EDGE_REGION)
    local = ext.backend("acm", sb.account_id, sb.region)
    end, token = plan.end, "3f1d9c0b7e2a4d6f8a1c2e3b4d5f6a7b"
    arns = {"web": _request(acm_edge, f"*.{ZONE}", [ZONE]), "white-label": _request(acm_edge, WHITE_LABEL, [PORTAL, SHOP]),
            "status": _request(acm_edge, STATUS), "pending": _request(acm_edge, PENDING_NEW),
            "api": _request(acm_local, API)}
    rec = {d: ext.validation_record(d, f"{token[:8]}{i}{token[9:]}")
           for i, d in enumerate((f"*.{ZONE}", ZONE, WHITE_LABEL, PORTAL, SHOP, STATUS, PENDING_NEW, API))}
    ext.set_certificate(edge, arns["web"], status="ISSUED", not_before=end - 165 * DAY, not_after=end + 230 * DAY,
                            issued_at=end - 165 * DAY, renewal_status=None,
                            validation={f"*.{ZONE}": ("SUCCESS", rec[f"*.{ZONE}"]), ZONE: ("SUCCESS", rec[ZONE])})
    ext.set_certificate(edge, arns["white-label"], status="ISSUED", not_before=plan.expiry - 395 * DAY,
                            not_after=plan.expiry, issued_at=plan.expiry - 395 * DAY,
                            renewal_status="PENDING_VALIDATION", renewal_updated=end - 51 * DAY,
                            validation={WHITE_LABEL: ("SUCCESS", rec[WHITE_LABEL]),
                                        PORTAL: ("PENDING_VALIDATION", rec[PORTAL]), SHOP: ("SUCCESS", rec[SHOP])})
    ext.set_certificate(edge, arns["status"], status="EXPIRED", cert_type="IMPORTED",
                            not_before=plan.status_expiry - 365 * DAY, not_after=plan.status_expiry,
                            issued_at=plan.status_expiry - 365 * DAY)
    ext.set_certificate(local, arns["api"], status="ISSUED", not_before=end - 65 * DAY, not_after=end + 300 * DAY,
                            issued_at=end - 65 * DAY, validation={API: ("SUCCESS", rec[API])})
    ext.set_certificate(edge, arns["pending"], status="PENDING_VALIDATION", not_before=None, not_after=None,
                            validation={PENDING_NEW: ("PENDING_VALIDATION", rec[PENDING_NEW])})
    return arns, rec


def load_edge(sb, arns: dict[str, str]) -> dict[str, dict]:
    cf = _client(sb, "cloudfront", EDGE_REGION)
    dists = {"web": _distribution(cf, "scr-web", [WEB], arns["web"]),
             "white-label": _distribution(cf, "scr-white-label", [WHITE_LABEL, PORTAL, SHOP], arns["white-label"]),
             "status": _distribution(cf, "scr-status", [STATUS], arns["status"])}
    edge = ext.backend("acm", sb.account_id, EDGE_REGION)
    for key, d in dists.items():
        ext.set_in_use(edge, arns[key], d["ARN"])
    ext.set_in_use(ext.backend("acm", sb.account_id, sb.region), arns["api"],
                       f"arn:aws:elasticloadbalancing:{sb.region}:{sb.account_id}:loadbalancer/app/scr-production-alb/1")
    return {k: {"id": d["Id"], "domain": d["DomainName"]} for k, d in dists.items()}


def load_dns(sb, rec: dict[str, dict], dists: dict[str, dict]) -> None:
    r53 = _client(sb, "route53", EDGE_REGION)
    _zone(r53, ZONE, [
        (WEB, "A", {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": dists["web"]["domain"], "EvaluateTargetHealth": False}),
        (WHITE_LABEL, "CNAME", dists["white-label"]["domain"]),
        (STATUS, "CNAME", dists["status"]["domain"]),
        (OLD_TARGET, "CNAME", "d1retired0old.cloudfront.net"),
        (API, "CNAME", "scr-production-alb-1.eu-west-1.elb.amazonaws.com"),
        *[(rec[d]["Name"], "CNAME", rec[d]["Value"]) for d in (f"*.{ZONE}", ZONE, WHITE_LABEL, API)]])
    _zone(r53, PARTNER_ZONE, [
        (PORTAL, "CNAME", WHITE_LABEL), (SHOP, "CNAME", OLD_TARGET), (PARTNER_ZONE, "CAA", CAA),
        (rec[SHOP]["Name"], "CNAME", rec[SHOP]["Value"])])  # portal's validation record was deleted


def load_metrics(sb, plan: Plan, dists: dict[str, dict]) -> None:
    cw = _client(sb, "cloudwatch", EDGE_REGION)
    series = [("web", "4xxErrorRate", plan.web_4xx, "Percent"), ("web", "5xxErrorRate", plan.web_5xx, "Percent"),
              ("web", "Requests", plan.web_requests, "None"),
              ("white-label", "4xxErrorRate", plan.wl_4xx, "Percent"),
              ("white-label", "5xxErrorRate", plan.wl_5xx, "Percent"),
              ("white-label", "Requests", plan.wl_requests, "None"), ("status", "Requests", plan.status_requests, "None")]
    items = [{"MetricName": metric, "Dimensions": [{"Name": "DistributionId", "Value": dists[key]["id"]},
                                                   {"Name": "Region", "Value": "Global"}],
              "Timestamp": ts.to_pydatetime(), "Value": float(values[i]), "Unit": unit}
             for key, metric, values, unit in series for i, ts in enumerate(plan.minutes)]
    put_metrics(cw, "AWS/CloudFront", items)


@register("certificates")
def play(sb) -> Played:
    plan = Plan(sb.now)
    arns, rec = load_acm(sb, plan)
    dists = load_edge(sb, arns)
    load_dns(sb, rec, dists)
    load_metrics(sb, plan, dists)
    t, end = plan.t, plan.end
    days = round((plan.expiry - end) / DAY, 2)
    truth = {"scenario": "certificates", "distributions": {k: d["id"] for k, d in dists.items()},
             "expiring": {WHITE_LABEL: days, PORTAL: days, SHOP: days,
                          STATUS: round((plan.status_expiry - end) / DAY, 2)},
             "validation_pending": sorted([PORTAL, PENDING_NEW]),
             "dns_mismatches": sorted([(PORTAL, "validation record missing"),
                                       (SHOP, "does not point at its distribution"),
                                       (PORTAL, "CAA does not allow Amazon to issue"),
                                       (SHOP, "CAA does not allow Amazon to issue")]),
             "edge_peak": {"distribution": dists["web"]["id"], "series": "4xx", "peak_pct": WEB_4XX_PEAK,
                           "at": iso(plan.peak_at)},
             "expired_in_window": STATUS, "expired_at": iso(plan.status_expiry)}
    incident = incident_fields("SANDBOX-CERTIFICATES", "Blank pages after the frontend deploy; partner domains warn "
                               "about certificates", "P2", t)
    resources = {"certificates": {"domains": [WEB, WHITE_LABEL, PORTAL, SHOP, STATUS, API],
                                  "cloudfront_distributions": [d["id"] for d in dists.values()]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan"]
