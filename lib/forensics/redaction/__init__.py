"""Secret redaction: detection rules (rules.py, keys.py, shape.py), the per-text engine (engine.py),
known-secret masking (known.py) and the final pass over a record (record.py). The public API is
``forensics.redact``."""
