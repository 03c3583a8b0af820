"""PostgreSQL's own server log read as evidence, vectorised (Arrow string kernels, RE2), to pgbadger's depth.

- :mod:`.prefix`     ``log_line_prefix`` compiled into one RE2 regex with named groups;
- :mod:`.reader`     lines (stderr files, RDS/Aurora CloudWatch events) and csvlog/jsonlog records into one
                     frame of entries, multi-line entries (DETAIL, HINT, CONTEXT, STATEMENT, continuation lines)
                     joined;
- :mod:`.normalize`  statements normalised to pg_stat_statements' shape (``$1``) and fingerprinted;
- :mod:`.extract`    what an incident needs from the entries: statements from ``duration:`` lines, errors by
                     SQLSTATE class and signature, authentication failures by method, lock waits, deadlocks,
                     temporary files, checkpoints, autovacuum/analyze, connections and sessions, cancellations;
- :mod:`.files`      self-hosted servers' log files from a path or S3.
"""
