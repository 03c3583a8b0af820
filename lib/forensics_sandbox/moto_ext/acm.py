"""ACM: certificates with a past and a state.

moto issues every requested certificate for a year from now, turns ``PENDING_VALIDATION`` into ``ISSUED``
after 60 s of wall time, gives every certificate the same validation record name, and has no
``RenewalSummary``; no API gives a certificate a past (and an expired one cannot be imported).
:func:`set_certificate` plants what ``DescribeCertificate`` then reports for one certificate,
:func:`set_in_use` its users; :func:`install_planted_state` makes moto's ``CertBundle`` report them.
Certificates nothing was planted on are left exactly as moto has them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .patching import patch_once
from .times import aware


def install_planted_state() -> None:
    from moto.acm.models import CertBundle

    def make_describe(original):
        def describe(self) -> dict[str, Any]:
            out = original(self)
            planted = getattr(self, "forensics_state", None)
            if planted:
                out["Certificate"].update({k: v for k, v in planted.items() if k != "_drop"})
                for key in planted.get("_drop", ()):
                    out["Certificate"].pop(key, None)
            return out

        return describe

    def make_check(original):
        def check(self) -> None:  # moto's clock (expiry, the 60 s validation) must not undo what was planted
            if getattr(self, "forensics_state", None) is None:
                original(self)

        return check

    patch_once(CertBundle, "describe", make_describe)
    patch_once(CertBundle, "check", make_check)


def validation_record(domain: str, token: str) -> dict:
    """The CNAME ACM asks for to validate ``domain`` (``token`` stands for ACM's random labels)."""
    base = domain[2:] if domain.startswith("*.") else domain
    return {"Name": f"_{token}.{base}.", "Type": "CNAME", "Value": f"_{token[::-1]}.acm-validations.aws."}


def set_certificate(acm_backend, arn: str, *, status: str, not_before, not_after, cert_type: str | None = None,
                    issued_at=None, renewal_status: str | None = None, renewal_reason: str | None = None,
                    renewal_updated=None, validation: dict | None = None) -> dict:
    """What ``DescribeCertificate`` reports for the certificate ``arn`` from now on.

    ``validation``: domain -> (validation status, record dict from :func:`validation_record`); it is the
    certificate's ``DomainValidationOptions`` and, with a ``renewal_status``, its renewal's too.
    ``not_before``/``not_after`` None: the certificate has none yet (a request waiting for validation)."""
    bundle = acm_backend._certificates[arn]
    if cert_type:
        bundle.type = cert_type  # moto describes an IMPORTED one without validation options, as ACM does
    options = [{"DomainName": d, "ValidationDomain": d, "ValidationStatus": s, "ValidationMethod": "DNS",
                "ResourceRecord": rec} for d, (s, rec) in (validation or {}).items()]
    state: dict[str, Any] = {"Status": status}
    for key, value in (("NotBefore", not_before), ("NotAfter", not_after)):
        if value is None:
            state.setdefault("_drop", []).append(key)
        else:
            state[key] = aware(value).timestamp()
    if issued_at is not None:
        state["IssuedAt" if bundle.type != "IMPORTED" else "ImportedAt"] = aware(issued_at).timestamp()
    if options:
        state["DomainValidationOptions"] = options
    if renewal_status:
        updated = aware(renewal_updated) if renewal_updated is not None else dt.datetime.now(dt.timezone.utc)
        state["RenewalEligibility"] = "ELIGIBLE"
        state["RenewalSummary"] = {"RenewalStatus": renewal_status, "DomainValidationOptions": options,
                                   "UpdatedAt": updated.timestamp()}
        if renewal_reason:
            state["RenewalSummary"]["RenewalStatusReason"] = renewal_reason
    bundle.forensics_state = state
    bundle.status = status  # ListCertificates filters on it
    return state


def set_in_use(acm_backend, arn: str, user_arn: str) -> None:
    """The certificate is used by ``user_arn`` (a CloudFront distribution, a load balancer): ``InUseBy``."""
    bundle = acm_backend._certificates[arn]
    if user_arn not in bundle.in_use_by:
        bundle.in_use_by.append(user_arn)
