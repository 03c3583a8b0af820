"""SQLSTATE classes (PostgreSQL's errcodes.txt) and the codes of the messages that matter most when a log
carries no code (stderr/RDS without ``%e``): inferred from the message's fixed words, marked as inferred."""

from __future__ import annotations

CLASSES = {
    "00": "successful completion", "01": "warning", "02": "no data", "03": "SQL statement not yet complete",
    "08": "connection exception", "09": "triggered action exception", "0A": "feature not supported",
    "0B": "invalid transaction initiation", "0F": "locator exception", "0L": "invalid grantor",
    "0P": "invalid role specification", "0Z": "diagnostics exception", "20": "case not found",
    "21": "cardinality violation", "22": "data exception", "23": "integrity constraint violation",
    "24": "invalid cursor state", "25": "invalid transaction state", "26": "invalid SQL statement name",
    "27": "triggered data change violation", "28": "invalid authorization specification",
    "2B": "dependent privilege descriptors still exist", "2D": "invalid transaction termination",
    "2F": "SQL routine exception", "34": "invalid cursor name", "38": "external routine exception",
    "39": "external routine invocation exception", "3B": "savepoint exception", "3D": "invalid catalog name",
    "3F": "invalid schema name", "40": "transaction rollback", "42": "syntax error or access rule violation",
    "44": "WITH CHECK OPTION violation", "53": "insufficient resources", "54": "program limit exceeded",
    "55": "object not in prerequisite state", "57": "operator intervention", "58": "system error",
    "72": "snapshot failure", "F0": "configuration file error", "HV": "foreign data wrapper error",
    "P0": "PL/pgSQL error", "XX": "internal error",
}

#: (regex on the message, code): first match wins; PostgreSQL's own English texts.
INFERRED = [
    (r"^duplicate key value violates unique constraint", "23505"),
    (r"violates foreign key constraint", "23503"),
    (r"violates not-null constraint", "23502"),
    (r"violates check constraint", "23514"),
    (r"violates exclusion constraint", "23P01"),
    (r"^syntax error at or near", "42601"),
    (r"^column .* does not exist", "42703"),
    (r"^relation .* does not exist", "42P01"),
    (r"^function .* does not exist", "42883"),
    (r"^operator does not exist", "42883"),
    (r"^permission denied", "42501"),
    (r"^must be owner of", "42501"),
    (r"^division by zero", "22012"),
    (r"^invalid input syntax", "22P02"),
    (r"^value too long for type", "22001"),
    (r"out of range", "22003"),
    (r"^deadlock detected", "40P01"),
    (r"^could not serialize access", "40001"),
    (r"^canceling statement due to statement timeout", "57014"),
    (r"^canceling statement due to user request", "57014"),
    (r"^canceling statement due to lock timeout", "55P03"),
    (r"^could not obtain lock on", "55P03"),
    (r"^canceling statement due to conflict with recovery", "40001"),
    (r"^terminating connection due to administrator command", "57P01"),
    (r"^terminating connection due to idle-in-transaction timeout", "25P03"),
    (r"^terminating connection due to idle-session timeout", "57P05"),
    (r"^terminating connection due to conflict with recovery", "40001"),
    (r"^terminating connection because of crash of another server process", "57P02"),
    (r"^the database system is (starting up|shutting down|in recovery mode)", "57P03"),
    (r"^sorry, too many clients already", "53300"),
    (r"^remaining connection slots are reserved", "53300"),
    (r"^too many connections for", "53300"),
    (r"^out of memory", "53200"),
    (r"^could not (extend|write to) file .*No space left", "53100"),
    (r"^temporary file size exceeds temp_file_limit", "53400"),
    (r"^\w+ authentication failed for user", "28P01"),
    (r"^no pg_hba\.conf entry for", "28000"),
    (r"^pg_hba\.conf rejects connection", "28000"),
    (r"^role .* does not exist", "28000"),
    (r"^role .* is not permitted to log in", "28000"),
    (r"^database .* does not exist", "3D000"),
    (r"^current transaction is aborted", "25P02"),
    (r"^there is no transaction in progress", "25P01"),
    (r"^there is already a transaction in progress", "25001"),
    (r"^prepared statement .* does not exist", "26000"),
    (r"^cursor .* does not exist", "34000"),
    (r"^could not receive data from client", "08006"),
    (r"^unexpected EOF on client connection", "08006"),
    (r"^connection to client lost", "08006"),
]


def class_of(code: str | None) -> str | None:
    """``"23 integrity constraint violation"`` for ``23505``; None for no code."""
    if not code or not isinstance(code, str) or len(code) < 2:
        return None
    return f"{code[:2]} {CLASSES.get(code[:2], 'other')}"
