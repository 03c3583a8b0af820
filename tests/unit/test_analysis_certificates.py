"""Certificates analysis: what expires, which validations wait, where DNS disagrees, the edge's peak."""

from __future__ import annotations

import json

import pandas as pd

from forensics import contracts
from forensics.analysis import certificates as ac
from forensics.sources import _typed
from forensics.sources.certificates import CERTIFICATE_COLUMNS, DISTRIBUTION_COLUMNS, RECORD_COLUMNS
from forensics.window import IncidentWindow

END = pd.Timestamp("2026-11-23T10:00:00Z")
DAY = pd.Timedelta(days=1)


def cert(arn, names, status="ISSUED", days=200.0, used=True, renewal=None, validation=()):
    return {"timestamp": END + days * DAY if days is not None else None, "source": "acm", "resource": names[0],
            "kind": contracts.CERTIFICATE_EXPIRY, "message": "", "arn": arn, "domain": names[0],
            "names": ", ".join(names), "status": status, "not_after": END + days * DAY if days is not None else None,
            "in_use_by": "arn:aws:cloudfront::1:distribution/E1" if used else "", "renewal_status": renewal,
            "validation": json.dumps([{"domain": d, "status": s, "name": n, "type": "CNAME", "value": v}
                                      for d, s, n, v in validation]) if validation else None}


def certs(*rows) -> pd.DataFrame:
    return _typed(pd.DataFrame(list(rows)), CERTIFICATE_COLUMNS)


def records(*rows) -> pd.DataFrame:
    """rows: (zone, name, type, value or alias)"""
    return _typed(pd.DataFrame([{"zone_id": "Z1", "zone": z, "name": n, "type": t,
                                 "values": None if a else v, "alias_target": v if a else None}
                                for z, n, t, v, a in rows]), RECORD_COLUMNS)


def dists(*rows) -> pd.DataFrame:
    return _typed(pd.DataFrame([{"distribution_id": i, "domain_name": d, "aliases": ", ".join(a),
                                 "certificate_arn": c} for i, d, a, c in rows]), DISTRIBUTION_COLUMNS)


def test_a_wildcard_covers_exactly_one_label():
    assert ac.covers("*.example.com", "app.example.com")
    assert not ac.covers("*.example.com", "example.com") and not ac.covers("*.example.com", "a.b.example.com")
    assert ac.covers("App.Example.com.", "app.example.com")


def test_expiring_judges_a_name_by_what_is_served_and_ignores_what_matters_to_nobody():
    c = certs(cert("old", ["a.example.com"], days=5, used=False),          # replaced by "new": not expiring
              cert("new", ["a.example.com"], days=380, used=False),
              cert("served", ["b.example.com"], days=9.5),                  # in use, ends soon
              cert("spare", ["b.example.com"], days=300, used=False),       # a renewal not yet attached
              cert("gone", ["c.example.com"], status="EXPIRED", days=-0.25),
              cert("stranger", ["nobody.example.org"], days=3, used=False),  # neither used nor a domain of ours
              cert("asked", ["d.example.com"], status="PENDING_VALIDATION", days=None, used=False))
    got = ac.expiring(c, END, 30, ["a.example.com", "b.example.com", "c.example.com", "d.example.com"])
    assert got == {"c.example.com": -0.25, "b.example.com": 9.5}
    assert ac.expiring(c, END, 30, []) == got  # without domains: the in-use ones, which are these
    assert ac.expiring(certs(cert("fine", ["a.example.com"], days=200)), END, 30, ["a.example.com"]) == {}
    assert ac.expiring(certs(), END, 30, ["a.example.com"]) == {}


VAL = ("_x.portal.partner.com.", "_y.acm-validations.aws.")
PENDING = cert("wl", ["custom.example.com", "portal.partner.com", "shop.partner.com"], days=9,
               renewal="PENDING_VALIDATION",
               validation=[("custom.example.com", "SUCCESS", "_c.custom.example.com.", "_c.acm-validations.aws."),
                           ("portal.partner.com", "PENDING_VALIDATION", *VAL),
                           ("shop.partner.com", "SUCCESS", "_s.shop.partner.com.", "_s.acm-validations.aws.")])


def test_validation_pending_lists_the_domains_a_new_certificate_or_a_renewal_waits_for():
    got = ac.validation_pending(certs(PENDING, cert("ok", ["a.example.com"])))
    assert [(p["domain"], p["renewal_status"], p["record_name"], p["record_value"]) for p in got] == [
        ("portal.partner.com", "PENDING_VALIDATION", "_x.portal.partner.com", "_y.acm-validations.aws")]
    assert ac.validation_pending(certs(cert("ok", ["a.example.com"]))) == []


def test_dns_mismatches_finds_every_kind_of_disagreement_in_the_zones_we_host():
    r = records(("example.com", "custom.example.com", "CNAME", "d1.cloudfront.net", False),
                ("example.com", "old.example.com", "CNAME", "d0.cloudfront.net", False),
                ("partner.com", "portal.partner.com", "CNAME", "custom.example.com", False),
                ("partner.com", "shop.partner.com", "CNAME", "old.example.com", False),
                ("partner.com", "partner.com", "CAA", '0 issue "letsencrypt.org"', False),
                ("example.com", "app.example.com", "A", "d2.cloudfront.net", True))
    d = dists(("E1", "d1.cloudfront.net", ["custom.example.com", "portal.partner.com", "shop.partner.com"], "wl"),
              ("E2", "d2.cloudfront.net", ["app.example.com", "www.example.com"], "web"))
    c = certs(PENDING, cert("web", ["*.example.com"]))
    got = {(m["domain"], m["problem"]) for m in ac.dns_mismatches(c, r, d, ["portal.partner.com", "app.example.com"])}
    assert got == {("portal.partner.com", "validation record missing"),
                   ("shop.partner.com", "does not point at its distribution"),
                   ("www.example.com", "no DNS record"),
                   ("portal.partner.com", "CAA does not allow Amazon to issue")}
    shop = next(m for m in ac.dns_mismatches(c, r, d) if m["domain"] == "shop.partner.com")
    assert shop["found"] == "shop.partner.com -> old.example.com -> d0.cloudfront.net"


def test_dns_mismatches_is_empty_when_dns_says_what_is_needed_and_silent_about_zones_hosted_elsewhere():
    ok = records(("example.com", "custom.example.com", "CNAME", "d1.cloudfront.net", False),
                 ("partner.com", "portal.partner.com", "CNAME", "custom.example.com", False),
                 ("partner.com", "shop.partner.com", "CNAME", "custom.example.com", False),
                 ("partner.com", VAL[0].rstrip("."), "CNAME", VAL[1], False),
                 ("partner.com", "partner.com", "CAA", '0 issue "amazon.com"', False))
    d = dists(("E1", "d1.cloudfront.net", ["custom.example.com", "portal.partner.com", "shop.partner.com"], "wl"))
    assert ac.dns_mismatches(certs(PENDING), ok, d, ["portal.partner.com"]) == []
    elsewhere = records(("example.com", "custom.example.com", "CNAME", "d1.cloudfront.net", False))
    assert ac.dns_mismatches(certs(PENDING), elsewhere, d.iloc[:0], ["portal.partner.com"]) == []


def test_an_alias_its_certificate_does_not_cover():
    d = dists(("E2", "d2.cloudfront.net", ["app.example.com", "app.other.org"], "web"))
    r = records(("example.com", "app.example.com", "A", "d2.cloudfront.net", True))
    got = ac.dns_mismatches(certs(cert("web", ["*.example.com"])), r, d)
    assert [(m["domain"], m["problem"]) for m in got] == [("app.other.org", "certificate does not cover the alias")]


def test_a_cname_loop_ends():
    r = records(("example.com", "a.example.com", "CNAME", "b.example.com", False),
                ("example.com", "b.example.com", "CNAME", "a.example.com", False))
    assert ac.resolve(r, "a.example.com") == ["a.example.com", "b.example.com"]


def edge(rows) -> pd.DataFrame:
    return _typed(pd.DataFrame([{"timestamp": t, "id": "x", "label": lab, "value": v, "stat": "Average",
                                 "unit": "Percent"} for t, lab, v in rows]), contracts.METRIC_COLUMNS)


def test_the_edge_peak_is_the_highest_4xx_or_5xx_rate_inside_the_window():
    w = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")
    m = edge([("2026-11-23T08:30Z", "E1 4xx %", 40.0),  # before the window: not the peak
              ("2026-11-23T09:10Z", "E1 4xx %", 18.5), ("2026-11-23T09:10Z", "E1 requests", 3000),
              ("2026-11-23T09:20Z", "E2 5xx %", 7.0), ("2026-11-23T09:30Z", "E1 origin latency ms", 900.0)])
    assert ac.edge_error_rate_peak(m, w) == {"distribution": "E1", "series": "4xx", "peak_pct": 18.5,
                                             "at": "2026-11-23T09:10:00Z", "requests": 3000}
    assert ac.edge_error_rate_peak(edge([]), w) is None


def test_the_verdict_says_plainly_when_there_is_nothing_to_find():
    assert ac.verdict({"expiring": {}, "validation_pending": [], "dns_mismatches": []}, 30).startswith(
        "Nothing to find: no certificate in use ends within 30 days")
    text = ac.verdict({"expiring": {"a.example.com": -0.5, "b.example.com": 9.0}, "validation_pending": [],
                       "dns_mismatches": [{"domain": "c.example.com", "problem": "no DNS record"}]}, 30)
    assert text == ("Found: a.example.com expired 0.5 day(s) ago; b.example.com expires in 9 day(s); "
                    "c.example.com: no DNS record.")


def test_expiry_markers_are_the_certificates_ends():
    m = ac.expiry_markers(certs(cert("a", ["a.example.com"], days=2), cert("p", ["p.example.com"], days=None)))
    assert m == [(END + 2 * DAY, "certificate a.example.com ends")]
