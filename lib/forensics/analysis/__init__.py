"""Pure functions on DataFrames: they take captured frames and return frames, never touch a source.

- :mod:`.onset`       when did a metric depart from its baseline (episodes, first onset, 5xx rate)
- :mod:`.signatures`  log messages grouped by template (masking + Brain-style frequency grouping)
- :mod:`.statements`  pg_stat_statements deltas over a window, with reset/eviction flags
- :mod:`.timeline`    one sorted timeline across sources; the change just before an onset
- :mod:`.capacity`    connection pool arithmetic, holders by app/state, blocking tree

Submodules are imported explicitly (``from forensics.analysis import onset``) so that importing one
does not pay for the others.
"""
