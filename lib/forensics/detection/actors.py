"""Who is an actor in a trail: a principal (assumed-role sessions folded to their role), an address and a
client (the user agent's product family), and which actor a role session belongs to.

Folding rules, each from how AWS names things (CloudTrail userIdentity element reference):

- ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` is the role ``ROLE`` (the session name is kept apart:
  an EC2 instance's session is named after the instance, ``i-0abc...``);
- a user agent's *family* drops what changes between two runs of the same client: versions
  (``aws-cli/2.13.1`` -> ``aws-cli``), parenthesised platform details, UUIDs and long hex ids, brackets;
- an address that is not an IP (``AWS Internal``, ``s3.amazonaws.com``) is AWS acting for the principal;
- a role session created by an ``AssumeRole`` call of the window belongs to the caller's story
  (``responseElements.assumedRoleUser.arn``): what a role did is part of the story of who assumed it.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pandas as pd

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_HEX = re.compile(r"\b[0-9a-f]{8,}\b", re.I)
_VERSION = re.compile(r"/[^\s,;\]]*")
_PARENS = re.compile(r"\([^)]*\)")
_NUMBERS = re.compile(r"\b\d[\w.\-]*")
_SEP = re.compile(r"[\s,;\[\]_]+")
_ROLE_SESSION = re.compile(r"^arn:(aws[\w-]*):sts::(\d+):assumed-role/([^/]+)/(.+)$")


def principal_of(arn, principal_type=None) -> str:
    """The principal an actor is known by: assumed-role sessions folded to ``arn:...:iam::ACC:role/ROLE``."""
    if arn is None or (isinstance(arn, float) and arn != arn) or str(arn) in ("", "<NA>"):
        return f"({principal_type})" if principal_type and str(principal_type) not in ("<NA>", "nan") else "(unknown)"
    m = _ROLE_SESSION.match(str(arn))
    if m:
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"
    return str(arn)


def session_of(arn) -> str | None:
    """The session name of an assumed-role ARN (``i-0abc...`` for an instance's credentials), else None."""
    m = _ROLE_SESSION.match(str(arn)) if arn is not None else None
    return m.group(4) if m else None


def agent_family(ua) -> str:
    """A user agent without what changes between runs of the same client (versions, ids, platform)."""
    if ua is None or (isinstance(ua, float) and ua != ua):
        return "(none)"
    text = _UUID.sub(" ", str(ua)[:512])
    text = _PARENS.sub(" ", text)
    text = _VERSION.sub(" ", text)
    text = _HEX.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    tokens = []
    for tok in _SEP.split(text):
        tok = tok.strip("+-.:")
        if tok and tok not in tokens:
            tokens.append(tok)
    return " ".join(tokens)[:80] or "(none)"


def is_ip(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def network_of(address) -> str:
    """The network an address is in for "usual network" purposes: an IPv4 /24, an IPv6 /48; an address that is
    not an IP (AWS acting for the principal) is itself."""
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return str(address) if address is not None else "(none)"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _detail(text) -> dict:
    try:
        d = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def annotate(frame: pd.DataFrame) -> pd.DataFrame:
    """The trail frame with ``who`` (folded principal), ``session``, ``network``, ``agent``, ``actor``
    (who | address | agent family), ``story`` (the actor whose story the row belongs to: the assumer's
    for sessions it created) and ``denied``/``mutating`` flags."""
    if frame is None or not len(frame):
        cols = list(frame.columns) if frame is not None else []
        return pd.DataFrame(columns=cols + ["who", "session", "network", "agent", "actor", "story", "denied",
                                            "mutating", "service_address"])
    df = frame.copy()
    ptype = df["principal_type"] if "principal_type" in df.columns else pd.Series(None, index=df.index)
    df["who"] = [principal_of(a, t) for a, t in zip(df["principal"].astype("object"), ptype.astype("object"))]
    df["session"] = [session_of(a) for a in df["principal"].astype("object")]
    addr = df["source_ip"].astype("object").where(df["source_ip"].notna(), "(none)")
    df["network"] = [network_of(a) for a in addr]
    df["service_address"] = [not is_ip(a) for a in addr]
    ua = df["user_agent"] if "user_agent" in df.columns else pd.Series(None, index=df.index)
    df["agent"] = [agent_family(u) for u in ua.astype("object")]
    df["actor"] = [f"{w} | {a} | {g}" for w, a, g in zip(df["who"], addr.astype(str), df["agent"])]
    err = df["error_code"].astype("object") if "error_code" in df.columns else pd.Series(None, index=df.index)
    df["denied"] = [bool(e) and isinstance(e, str) and DENIED.search(e) is not None for e in err]
    ro = df["read_only"] if "read_only" in df.columns else pd.Series(None, index=df.index)
    df["mutating"] = [v is False or (isinstance(v, (bool,)) and not v) for v in ro.astype("object")]
    df["story"] = df["actor"]
    if "detail" in df.columns:
        assumed = {}
        mask = df["event_name"].isin(["AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"]) \
            & err.isna().to_numpy()
        for idx in df.index[mask.to_numpy(dtype=bool)]:
            session = ((_detail(df.at[idx, "detail"]).get("responseElements") or {}).get("assumedRoleUser")
                       or {}).get("arn")
            if session and not df.at[idx, "service_address"]:
                assumed.setdefault(str(session), df.at[idx, "actor"])
        if assumed:
            df["story"] = [assumed.get(str(p), a) for p, a in zip(df["principal"].astype("object"), df["actor"])]
    return df


#: error codes that mean "not allowed" (IAM and service authorisation failures), not "not found" or throttling
DENIED = re.compile(r"(?i)(accessdenied|unauthorized|forbidden|authorizationerror|notauthorized|"
                    r"authfailure|invalidclienttokenid|signaturedoesnotmatch)")
