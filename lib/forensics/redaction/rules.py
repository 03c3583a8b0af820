"""The detection rules: vendor token formats (a fixed prefix makes them safe anywhere), structural
forms (PEM blocks, JWTs, URL credentials, SQL/CLI passwords, auth headers) and the field-name rule.

Each rule has a *gate*: lowercase literals of which at least one must be in the text for the rule to
run (found in one Aho-Corasick pass), or, for the few rules without a literal, an RE2-compatible
*trigger* regex. The union of gates and triggers is the prefilter that ``redact.frame`` runs
vectorised over a whole column: a text that passes no gate is never changed by any rule.

Token formats follow the public rule sets of gitleaks and detect-secrets (formats read, rules written
here). Order matters: specific formats first, the field-name rule last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from . import shape
from .keys import VENDOR_WORDS


@dataclass(frozen=True)
class Rule:
    kind: str
    rx: re.Pattern
    group: int = 0
    gate: tuple[str, ...] = ()
    trigger: str | None = None  # RE2 regex for the vectorised prefilter, when the gate literals are too common
    check: Callable[[str], bool] | None = field(default=None, compare=False)  # False: not a secret


_END = r"(?![A-Za-z0-9_-])"  # a token ends where its alphabet does


def _tok(kind: str, pattern: str, gate: tuple[str, ...], flags: int = 0, check=None, group: int = 0,
         trigger: str | None = None) -> Rule:
    return Rule(kind, re.compile(pattern, flags), group, gate, trigger, check)


def _not_placeholder(v: str) -> bool:
    return not shape.is_placeholder(v)


def _aws_secret(v: str) -> bool:
    """40 base64 characters shaped like an AWS secret access key: all of upper, lower and digit, at most
    three '/', high entropy. Excludes hex digests (no uppercase), words, paths and the documented example."""
    return (any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v)
            and v.count("/") <= 3 and "//" not in v and shape.entropy(v) >= 4.1 and not shape.is_placeholder(v))


#: AWS access key ids (and the other unique-id prefixes). Not secret on their own (AWS: the id is the
#: public half of the pair): masked only where a secret is beside it in the same text, or where the text is
#: the id alone (a column or field holding just the id, e.g. CloudTrail's access_key_id, hashed on purpose
#: so "the key used at 09:03 is the one used at 11:40" stays visible without the id). engine.detect applies it
#: after every other rule.
KEY_ID = _tok("aws-access-key-id", r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
              ("akia", "asia", "abia", "acca", "aida", "aroa", "agpa", "anpa", "anva", "aipa", "a3t"),
              check=lambda v: not v.endswith("EXAMPLE"))  # AWS's documented example id only

VENDOR: list[Rule] = [
    KEY_ID,
    _tok("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
         ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    _tok("gitlab-token", r"\b(?:gl(?:pat|dt|ft|rt|soat|ffct|imt|agent|oas|ptt|cbt)-[A-Za-z0-9_.-]{20,300}|GR1348941[\w-]{20})",
         ("glpat-", "gldt-", "glft-", "glrt-", "glsoat-", "glffct-", "glimt-", "glagent-", "gloas-", "glptt-",
          "glcbt-", "gr1348941")),
    _tok("slack-token", r"\bxox[abposre](?:\.xox[bp])?-[A-Za-z0-9-]{10,}", ("xox",)),
    _tok("slack-token", r"\bxapp-\d-[A-Za-z0-9-]{10,}", ("xapp-",)),
    _tok("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]+", ("hooks.slack.com",)),
    _tok("webhook-url", r"https://(?:[a-z0-9-]+\.webhook\.office\.com/webhookb2|discord(?:app)?\.com/api/webhooks)/[^\s'\"<>]+",
         ("webhook.office.com", "discord.com/api/webhooks", "discordapp.com/api/webhooks")),
    _tok("stripe-key", r"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}\b", ("sk_live", "sk_test", "sk_prod", "rk_live",
                                                                               "rk_test", "rk_prod")),
    _tok("stripe-webhook-secret", r"\bwhsec_[A-Za-z0-9]{16,}\b", ("whsec_",)),
    _tok("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",)),
    _tok("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}(?:T3BlbkFJ[A-Za-z0-9_-]{20,})?",
         ("sk-",), check=lambda v: shape.secret_shaped(v, 20, 3.5), trigger=r"sk-[A-Za-z0-9_-]{20}"),
    _tok("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}" + _END, ("aiza",)),
    _tok("google-oauth-token", r"\bya29\.[0-9A-Za-z_-]{20,}", ("ya29.",)),
    _tok("google-oauth-token", r"\b1//0[0-9A-Za-z_-]{30,}", ("1//0",)),
    _tok("google-client-secret", r"\bGOCSPX-[0-9A-Za-z_-]{20,}", ("gocspx-",)),
    _tok("sendgrid-key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", ("sg.",)),
    _tok("twilio-key", r"\bSK[0-9a-fA-F]{32}\b", ("sk",), trigger=r"SK[0-9a-fA-F]{32}"),
    _tok("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", ("npm_",)),
    _tok("pypi-token", r"\bpypi-[A-Za-z0-9_-]{50,}", ("pypi-",)),
    _tok("rubygems-token", r"\brubygems_[a-f0-9]{48}\b", ("rubygems_",)),
    _tok("huggingface-token", r"\b(?:hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})\b", ("hf_", "api_org_")),
    _tok("shopify-token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b", ("shpat_", "shpca_", "shppa_", "shpss_")),
    _tok("digitalocean-token", r"\bdo[opr]_v1_[a-f0-9]{64}\b", ("doo_v1_", "dop_v1_", "dor_v1_")),
    _tok("databricks-token", r"\bdapi[a-f0-9]{32}(?:-\d)?\b", ("dapi",)),
    _tok("atlassian-token", r"\bATATT3[A-Za-z0-9_=-]{50,}", ("atatt3",)),
    _tok("heroku-key", r"\bHRKU-[A-Za-z0-9_-]{20,}", ("hrku-",)),
    _tok("vault-token", r"\bhv[sb]\.[A-Za-z0-9_-]{24,}", ("hvs.", "hvb.")),
    _tok("terraform-token", r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}", ("atlasv1",)),
    _tok("grafana-token", r"\b(?:glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9]{40,400}={0,3})",
         ("glc_", "glsa_", "eyjrijoi")),
    _tok("newrelic-key", r"\bNR(?:AK|II|JS|RA)-[A-Za-z0-9-]{19,}", ("nrak-", "nrii-", "nrjs-", "nrra-")),
    _tok("mailgun-key", r"\b(?:key|pubkey)-[a-f0-9]{32}\b", ("key-",), trigger=r"key-[a-f0-9]{32}"),
    _tok("mailchimp-key", r"\b[a-f0-9]{32}-us\d{1,2}\b", ("-us",), trigger=r"[a-f0-9]{32}-us[0-9]"),
    _tok("telegram-bot-token", r"\b\d{8,10}:AA[A-Za-z0-9_-]{32,33}" + _END, (":aa",)),
    _tok("azure-ad-client-secret", r"(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
         ("q~",)),
    _tok("dynatrace-token", r"\bdt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}\b", ("dt0c01.",)),
    _tok("doppler-token", r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}", ("dp.pt.", "dp.st.", "dp.sa.", "dp.ct.",
                                                                                  "dp.scim.", "dp.audit.")),
    _tok("linear-key", r"\blin_(?:api|oauth)_[A-Za-z0-9]{40}\b", ("lin_api_", "lin_oauth_")),
    _tok("postman-key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b", ("pmak-",)),
    _tok("pulumi-token", r"\bpul-[a-f0-9]{40}\b", ("pul-",)),
    _tok("planetscale-token", r"\bpscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64}", ("pscale_",)),
    _tok("sentry-token", r"\b(?:sntrys_eyJ[A-Za-z0-9+/=_]{50,}|sntryu_[a-f0-9]{64})", ("sntrys_", "sntryu_")),
    _tok("sendinblue-key", r"\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b", ("xkeysib-",)),
    _tok("square-token", r"\b(?:sq0(?:atp|csp)-[A-Za-z0-9_-]{22,60}|EAAA[A-Za-z0-9_-]{56,})", ("sq0atp-", "sq0csp-", "eaaa")),
    _tok("facebook-token", r"\bEAA[A-Za-z0-9]{90,}", ("eaa",), trigger=r"EAA[A-Za-z0-9]{90}"),
    _tok("age-secret-key", r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", ("age-secret-key-1",)),
    _tok("artifactory-key", r"\b(?:AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})\b", ("akcp", "cmvmd")),
    _tok("onepassword-token", r"\b(?:ops_eyJ[A-Za-z0-9+/]{100,}={0,3}|A3-[A-Z0-9]{6}-[A-Z0-9-]{23,30})", ("ops_eyj", "a3-")),
    _tok("alibaba-key", r"\bLTAI[A-Za-z0-9]{20}\b", ("ltai",)),
    _tok("misc-vendor-token",
         r"\b(?:pplx-[A-Za-z0-9]{48}|pnu_[A-Za-z0-9]{36}|rdme_[a-z0-9]{70}|tk-us-[\w-]{48}|ntn_[0-9]{11}[A-Za-z0-9]{35}"
         r"|sgp_(?:[a-fA-F0-9]{16}_)?[a-fA-F0-9]{40}|shippo_(?:live|test)_[a-fA-F0-9]{40}|ico-[A-Za-z0-9]{32}"
         r"|sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}|fio-u-[A-Za-z0-9_=-]{64}|EZ[AT]K[A-Za-z0-9]{54}|p8e-[A-Za-z0-9]{32}"
         r"|duffel_(?:test|live)_[A-Za-z0-9_=-]{43}|FLW(?:SECK|PUBK)_TEST-[a-hA-H0-9]{12,32}(?:-X)?|CLOJARS_[A-Za-z0-9]{60}"
         r"|fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}|dnkey-[A-Za-z0-9=_-]{26}-[A-Za-z0-9=_-]{52}"
         r"|4b1d[A-Za-z0-9]{38}|v1\.0-[a-f0-9]{24}-[a-f0-9]{146}|gsk_[A-Za-z0-9]{52}|xai-[A-Za-z0-9]{80}"
         r"|r8_[A-Za-z0-9]{37}|lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}|sha256~[\w-]{43}|apify_api_[A-Za-z0-9]{36}"
         r"|dckr_pat_[A-Za-z0-9_-]{27}|ctp_[A-Za-z0-9]{36}|cfut_[A-Za-z0-9_-]{40,})",
         ("pplx-", "pnu_", "rdme_", "tk-us-", "ntn_", "sgp_", "shippo_", "ico-", "sm_aat_", "sm_pat_", "sm_sat_", "fio-u-",
          "ezak", "eztk", "p8e-", "duffel_", "flwseck_test", "flwpubk_test", "clojars_", "fo1_", "fm1", "fm2", "dnkey-",
          "4b1d", "v1.0-", "gsk_", "xai-", "r8_", "lsv2_", "sha256~", "apify_api_", "dckr_pat_", "ctp_", "cfut_"),
         check=lambda v: shape.entropy(v) >= 3.0),
]

_QVAL = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s'\",;&]+)"

STRUCTURE: list[Rule] = [
    _tok("private-key", r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----.*?"
                        r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|$)", ("-----begin",), re.S),
    _tok("private-key", r"\bPuTTY-User-Key-File-\d.*?Private-MAC: [0-9a-f]+", ("putty-user-key-file",), re.S),
    _tok("jwt", r"\bey[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_/\\-]{10,}\.(?:[A-Za-z0-9_/\\-]{8,}={0,2})?", ("ey",), trigger=r"ey[A-Za-z0-9_-]{10,}\.ey"),
    _tok("jwt", r"\bZXlK[A-Za-z0-9/_+-]{60,}={0,2}", ("zxlk",)),
    # The fixed prefixes that every STS session token starts with.
    _tok("aws-session-token", r"\b(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AgoJb3JpZ2lu|IQoDYXdz|AQoDYXdz)[A-Za-z0-9/+=]{60,}",
         ("iqojb3jpz2lu", "fwogzxivyxdz", "fqogzxivyxdz", "agojb3jpz2lu", "iqodyxdz", "aqodyxdz")),
    _tok("aws-secret-key", r"(?i)(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret(?:_?key)?)[\"'\]]?\s*(?:[:=]|=>|:=)\s*"
                           r"[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])", ("secret",), group=1, check=_not_placeholder),
    _tok("aws-session-token", r"(?i)(?:aws_?session_?token|aws_?security_?token|x-amz-security-token)[\"'\]]?\s*(?:[:=]|=>|:=)\s*"
                              r"[\"']?([A-Za-z0-9/+=]{40,})", ("session_token", "sessiontoken", "security_token",
                                                                "securitytoken", "security-token"),
         group=1, check=_not_placeholder),
    _tok("datadog-key", r"(?i)\b(?:dd_api_key|dd_app_key|datadog_api_key|datadog_app_key|dd-api-key|dd-application-key)"
                        r"[\"']?\s*[:=]\s*[\"']?([a-f0-9]{32,40})\b", ("dd_api_key", "dd_app_key", "datadog_", "dd-api-key",
                                                                      "dd-application-key"), group=1),
    _tok("sentry-dsn", r"https?://([0-9a-f]{32})(?::[0-9a-f]{32})?@[\w.-]*(?:sentry|ingest)[\w.-]*", ("sentry", "ingest"),
         group=1, trigger=r"://[0-9a-f]{32}(?::[0-9a-f]{32})?@"),
    _tok("azure-storage-key", r"(?i)\b(?:AccountKey|SharedAccessKey|SharedSecretValue|PrimaryKey|SecondaryKey)\s*=\s*"
                              r"([A-Za-z0-9+/]{20,}={0,2})", ("accountkey", "sharedaccesskey", "sharedsecretvalue",
                                                              "primarykey", "secondarykey"), group=1, check=_not_placeholder),
    _tok("azure-sas", r"(?i)(?:[?&;]|\b)sig=([A-Za-z0-9%+/=]{20,})", ("sig=",), group=1),
    _tok("aws-presigned", r"(?i)\bX-Amz-Signature=([0-9a-f]{64})\b", ("x-amz-signature",), group=1),
    _tok("bearer-token", r"(?i)\b(?:bearer|token|api-token|apikey|sso-key)\s+([A-Za-z0-9._~+/=-]{16,})",
         ("bearer", "token", "apikey", "sso-key"), group=1, check=lambda v: shape.secret_shaped(v, 16, 3.0) or v.startswith("ey"),
         trigger=r"(?:bearer|token|apikey|sso-key)\s+[A-Za-z0-9._~+/=-]{16}"),
    _tok("basic-auth", r"(?i)\bbasic\s+([A-Za-z0-9+/]{12,}={0,2})(?![A-Za-z0-9+/=])", ("basic",), group=1,
         check=lambda v: shape.classes(v) >= 2, trigger=r"basic\s+[A-Za-z0-9+/]{12}"),
    _tok("url-password", r"(?i)\b[a-z][a-z0-9+.-]*://([^/\s:@'\"]*):([^@\s/'\"]+)@", ("://",), group=2,
         check=lambda v: not shape.is_placeholder(v) and not shape.is_reference(v, True),
         trigger=r"://[^/\s:@'\"]*:[^@\s/'\"]+@"),
    _tok("url-password", r"(?i)\b(?:jdbc:[a-z0-9]+:|[a-z][a-z0-9+.-]*://)[^\s'\"]*?[;?&](?:password|pwd)=([^;&\s'\"]+)",
         ("password=", "pwd="), group=1, check=lambda v: not shape.is_placeholder(v) and not shape.is_reference(v, True)),
    _tok("dsn-password", r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s'\",;&]+)", ("password",), group=1, trigger=r"password\s*="),
    _tok("sql-password", r"(?i)\b(?:password|identified\s+by)\s+('(?:[^']|'')*')", ("password", "identified"), group=1,
         trigger=r"(?:password|identified\s+by)\s+'"),
    _tok("cli-password", r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mysqlsh)\b[^\n|;]*?\s-p(?!\s)([^\s'\"]+|'[^']*'|\"[^\"]*\")",
         ("mysql", "mariadb"), group=1, trigger=r"(?:mysql|mariadb)[^\n|;]*\s-p[^\s]"),
    _tok("cli-password", r"\b(?:sshpass|redis-cli|docker\s+login|podman\s+login|helm\s+registry\s+login|htpasswd)\b[^\n|;]*?"
                         r"\s-(?:p|a|b\s+\S+\s+\S+)\s+([^\s-][^\s]*)", ("sshpass", "redis-cli", "login", "htpasswd"),
         group=1, check=lambda v: not shape.is_reference(v, False) and not shape.is_placeholder(v),
         trigger=r"(?:sshpass|redis-cli|docker\s+login|podman\s+login|registry\s+login|htpasswd)"),
    _tok("cli-password", r"\bcurl\b[^\n|;]*?\s(?:-u|--user)[ =]?['\"]?[^:\s'\"]+:([^\s'\"]+)", ("curl",), group=1,
         check=lambda v: not shape.is_placeholder(v) and not shape.is_reference(v, True),
         trigger=r"curl[^\n|;]*\s(?:-u|--user)"),
    _tok("cli-password", r"(?i)(?<![\w-])--?[\w-]*(?:password|passwd|pwd|token|secret|api-key|apikey|access-key|auth)[\w-]*"
                         r"(?:=|[ \t]+)(\"[^\"]+\"|'[^']+'|[^\s'\"-][^\s'\"]*)",
         ("password", "passwd", "pwd", "token", "secret", "api-key", "apikey", "access-key", "auth"), group=1,
         check=lambda v: not shape.is_reference(v, False),
         trigger=r"-[\w-]*(?:password|passwd|pwd|token|secret|api-key|apikey|access-key|auth)[\w-]*(?:=|[ \t])"),
    _tok("secret-header", r"(?i)\b(?:authorization|proxy-authorization)\s*[:=]\s*[\"']?(?!bearer\b|basic\b|token\b|digest\b)"
                          r"([A-Za-z0-9._~+/=:-]{16,})", ("authorization",), group=1,
         check=lambda v: shape.secret_shaped(v, 16, 3.0), trigger=r"authorization\s*[:=]"),
    _tok("xml-secret", r"(?i)<(?:[\w:-]*(?:password|passwd|secret|token|apikey|api_key|accesskey|private_?key))>"
                       r"([^<\s][^<]{2,})</", ("password", "passwd", "secret", "token", "apikey", "api_key", "accesskey",
                                              "private"), group=1,
         trigger=r"<[\w:-]*(?:password|passwd|secret|token|apikey|api_key|accesskey|private_?key)>"),
    _tok("xml-secret", r"(?i)<add\s+key=\"[^\"]*(?:password|secret|token|apikey|api_key|connectionstring)[^\"]*\"\s+value=\"([^\"]+)\"",
         ("<add",), group=1),
]

#: ``<name> <op> <value>``: the field-name rule. The name is judged by keys.strength, the value by shape.
FIELD_KEY = re.compile(
    r"(?<![\w$@.])(?P<key>[A-Za-z_$@][\w$@.-]{0,80})(?P<kq>[\"'`]?\]?)[ \t]*"
    r"(?P<op>:=|=>|\?=|\|\|=|==|=|:(?!//|:)|,(?=[ \t]*[\"']))[ \t]*"
    r"(?P<scheme>(?:bearer|basic|token|digest)[ \t]+)?", re.I)
#: The value after a field's operator: quoted (kept whole) or a run up to a delimiter.
FIELD_VALUE = re.compile(
    r"\"(?:[^\"\\\n]|\\.){0,400}\"|'(?:[^'\\\n]|\\.){0,400}'|`[^`\n]{0,400}`|[^\s'\"`,;&<>(){}\[\]|\\]{1,400}")
#: Gate words of the field rule: a field name must contain one of them.
FIELD_GATE = ("pass", "pwd", "pswd", "senha", "contrasena", "secret", "token", "key", "auth", "credential", "creds", "sig", "cookie",
              "bearer", "license", "pat", "hook", "sas") + tuple(sorted(VENDOR_WORDS))
#: The field rule's RE2 trigger: a gate word inside a name, an assignment, then as many value characters
#: as the weakest acceptance needs (3 for a password field, 8 for any other; see engine.field_secret).
_PW_GATE = ("pass", "pwd", "pswd", "senha", "contrasena")
#: Short gate words that are common inside ordinary words (authorized, SIGHUP, path) count only as a whole
#: word of the name (keys.strength applies the same condition).
_WORD_GATE = ("auth", "authorization", "sig", "signature", "pat")
_OP = r"[\"'`]?\]?[ \t]*(?::=|=>|\?=|\|\|=|=|:)[ \t]*(?:(?:bearer|basic|token|digest)[ \t]+)?"


def _tail(n: int) -> str:
    value = r"(?:[\"'`][^\"'`\n]{%d}|[^\s\"'`,;&<>(){}\[\]|\\]{%d})" % (n, n)
    return r"(?:" + _OP + value + r"|[\"'`][ \t]*,[ \t]*[\"'`][^\"'`\n]{%d})" % n


FIELD_TRIGGER = (
    r"(?:" + "|".join(_PW_GATE) + r")[\w$@.-]*" + _tail(3)
    + r"|(?:" + "|".join(re.escape(w) for w in FIELD_GATE if w not in _PW_GATE + _WORD_GATE) + r")[\w$@.-]*" + _tail(8)
    + r"|(?:" + "|".join(_WORD_GATE) + r")(?:[_.$@-][\w$@.-]*)?" + _tail(8))

#: Unlabelled AWS secret access keys: 40 base64 characters with the shape and entropy of one. After the
#: labelled rules (a 40-character bearer token keeps its kind), before the field rule (``key=<40>``).
UNLABELLED: list[Rule] = [
    # Not a 40-character piece of a longer base64url blob (cut at its '-' or '_').
    Rule("aws-secret-key", re.compile(r"(?<![A-Za-z0-9/+_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])"), 0, (),
         r"(?:^|[^A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?:[^A-Za-z0-9/+=]|$)", _aws_secret),
]

RULES: list[Rule] = VENDOR + STRUCTURE + UNLABELLED
