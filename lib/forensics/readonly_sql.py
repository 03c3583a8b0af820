"""Only reads reach a database: one ``SELECT``/``WITH`` statement, checked before it is sent.

The named queries are ours, but their text is filled from parameters and the same runners could be
handed other text; a query engine that can write (Athena's ``UNLOAD``/``CREATE TABLE AS``/``DROP``,
PostgreSQL's functions with side effects) must never receive anything else. The statement is tokenised
(comments, string literals, quoted identifiers and PostgreSQL dollar quotes skipped, so a keyword inside
them never counts and a ``;`` inside them never splits), then:

- exactly one statement (a trailing ``;`` allowed);
- its first word is ``SELECT`` or ``WITH`` (PostgreSQL also ``SHOW``, ``TABLE``, ``VALUES``);
- no word anywhere that writes, changes the session or runs other text (``INSERT``, ``UPDATE``,
  ``DELETE``, ``MERGE``, ``INTO``, ``UNLOAD``, ``CREATE``, ``DROP``, ``ALTER``, ``SET``, ``EXECUTE``,
  ``COPY``, ``NOTIFY``, ``LOCK``...);
- PostgreSQL: no call of a function with an effect outside the (read-only, rolled-back) transaction:
  ``set_config``, advisory locks, large objects, ``pg_notify``, ``pg_terminate_backend``, statistics
  resets, file access, ``dblink``, ``query_to_xml`` (runs a string)... (:data:`PG_FUNCTIONS`).

:func:`check_output_location` keeps Athena's results out of every evidence bucket the environment names.
"""

from __future__ import annotations

import re

from .errors import ForensicsError

#: words that never appear in a read (outside literals and quoted identifiers)
#: (not words that are also functions or common column names: ``replace()``, ``start``, ``fetch first``)
WRITE_WORDS = frozenset(
    "insert update delete merge upsert into unload create drop alter truncate grant revoke set reset copy "
    "call execute prepare deallocate do notify listen unlisten lock vacuum reindex refresh checkpoint "
    "declare msck begin commit rollback savepoint".split())
ATHENA_FIRST = ("select", "with")
POSTGRES_FIRST = ("select", "with", "show", "table", "values")
#: PostgreSQL functions whose effect outlives a read-only transaction, or that run text of their own
PG_FUNCTIONS = re.compile(
    r"^(?:set_config|pg_advisory\w*|pg_try_advisory\w*|lo_\w+|loread|lowrite|pg_notify|pg_terminate_backend"
    r"|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile\w*|pg_stat_reset\w*|pg_stat_statements_reset"
    r"|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|pg_file_\w+|dblink\w*|nextval|setval"
    r"|pg_switch_wal|pg_create_\w+|pg_drop_\w+|pg_replication_\w+|pg_logical_\w+|pg_promote|pg_log_\w+"
    r"|query_to_xml\w*|query_to_xmlschema|cursor_to_xml\w*|table_to_xml\w*|schema_to_xml\w*"
    r"|database_to_xml\w*|pg_import_system_collations|pg_backup_\w+|pg_start_backup|pg_stop_backup"
    r"|pg_wal_replay_\w+|txid_current|pg_current_xact_id|pg_snapshot\w*|pg_export_snapshot)$")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<line>--[^\n]*)
  | (?P<block>/\*)
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<estr>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<num>[0-9][0-9.eE+-]*)
  | (?P<param>\$[0-9]+|%s|%\([A-Za-z_]\w*\)s)
  | (?P<punct>.)
""", re.X | re.S)


class NotReadOnly(ForensicsError, ValueError):
    """The statement is not one read: never sent."""


def tokens(sql: str, *, dollar_quotes: bool) -> list[tuple[str, str]]:
    """``(kind, text)`` for every word, quoted identifier and punctuation mark of ``sql`` (comments,
    whitespace and literals dropped; a literal is kept as ``("literal", "")``). An unterminated comment,
    literal or dollar quote raises :class:`NotReadOnly`."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n:
        m = _TOKEN.match(sql, i)
        if m is None:  # an unterminated quote: the pattern cannot match a lone ' or "
            raise NotReadOnly("an unterminated string or quoted identifier")
        kind = m.lastgroup
        if kind == "block":
            depth, j = 1, m.end()
            while depth and j < n:  # PostgreSQL nests block comments
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise NotReadOnly("an unterminated /* comment")
            i = j
            continue
        if kind == "dollar":
            if not dollar_quotes:
                out.append(("punct", "$"))
                i += 1
                continue
            end = sql.find(m.group(0), m.end())
            if end < 0:
                raise NotReadOnly(f"an unterminated {m.group(0)} quote")
            out.append(("literal", ""))
            i = end + len(m.group(0))
            continue
        if kind in ("str", "estr"):
            out.append(("literal", ""))
        elif kind == "qident":
            out.append(("qident", m.group(0)[1:-1].replace('""', '"').lower()))
        elif kind == "word":
            out.append(("word", m.group(0).lower()))
        elif kind == "punct":
            if m.group(0) in "'\"":
                raise NotReadOnly("an unterminated string or quoted identifier")
            out.append(("punct", m.group(0)))
        i = m.end()
    return out


def _check(sql: str, first_words: tuple[str, ...], *, dollar_quotes: bool, functions=None) -> None:
    toks = tokens(sql, dollar_quotes=dollar_quotes)
    while toks and toks[-1] == ("punct", ";"):
        toks.pop()
    if not toks:
        raise NotReadOnly("an empty statement")
    if ("punct", ";") in toks:
        raise NotReadOnly("more than one statement")
    first = next((t for t in toks if t != ("punct", "(")), ("", ""))
    if first[0] != "word" or first[1] not in first_words:
        raise NotReadOnly(f"the statement starts with {first[1].upper() or 'no keyword'!r}, "
                          f"not {' or '.join(w.upper() for w in first_words)}")
    for kind, text in toks:
        if kind == "word" and text in WRITE_WORDS:
            raise NotReadOnly(f"{text.upper()} is not a read")
    if functions is not None:
        for (kind, text), nxt in zip(toks, toks[1:]):
            if kind in ("word", "qident") and nxt == ("punct", "(") and functions.match(text):
                raise NotReadOnly(f"{text}() has an effect outside a read-only transaction")


def check_athena(sql: str) -> None:
    """One Athena (Trino) ``SELECT``/``WITH`` statement, else :class:`NotReadOnly`."""
    _check(sql, ATHENA_FIRST, dollar_quotes=False)


def check_postgres(sql: str) -> None:
    """One PostgreSQL read without side effects (see the module doc), else :class:`NotReadOnly`."""
    _check(sql, POSTGRES_FIRST, dollar_quotes=True, functions=PG_FUNCTIONS)


# ---- Athena's output location ---------------------------------------------------------------------
_S3_URI = re.compile(r"^s3://([^/]+)(/.*)?$")


def evidence_buckets(env: dict) -> dict[str, str]:
    """bucket -> the environment field naming it: every bucket the environment reads evidence from."""
    out: dict[str, str] = {}
    for where, section in (("cloudtrail.bucket", env.get("cloudtrail")),
                           ("alb.access_logs.bucket", (env.get("alb") or {}).get("access_logs")),
                           ("backups.bucket", env.get("backups"))):
        bucket = (section or {}).get("bucket") if isinstance(section, dict) else None
        if isinstance(bucket, str) and bucket:
            out.setdefault(bucket.lower(), where)
    return out


def check_output_location(location: str | None, env: dict) -> None:
    """``athena.output_location`` is an ``s3://`` location outside every evidence bucket (Athena writes
    its results there: never into the evidence it reads). ``None`` (the workgroup's) passes."""
    if location is None:
        return
    m = _S3_URI.match(location.strip())
    if not m:
        raise NotReadOnly(f"athena.output_location must be an s3://bucket/prefix/ location, got {location!r}")
    bucket = m.group(1).lower()
    named = evidence_buckets(env)
    if bucket in named:
        raise NotReadOnly(f"athena.output_location {location!r} is inside the evidence bucket {bucket} "
                          f"({named[bucket]}): Athena writes its results there; use a bucket of its own")
