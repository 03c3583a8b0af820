"""Which signatures of a bounded log sample to count exactly, and the literal fragments that select each.

Logs Insights counts by ``like`` tests, not by our signatures: for each chosen signature (:func:`candidates`:
the most changed at the onset, then the most frequent) :func:`fragments` finds the literal text runs that
select its sampled events and no other signature's; :func:`matchers` is the plan the counting query is
built from (:func:`forensics.sources.log_volume.signature_counts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import defaults
from .signatures import WILDCARD


def candidates(ranked_by_change: pd.DataFrame, by_count: pd.Series, *, n_count: int = defaults.LOG_TOP_BY_COUNT,
               n_change: int = defaults.LOG_TOP_BY_CHANGE) -> list[str]:
    """The signatures worth exact counts: the most changed in the sample, then the most frequent."""
    out = list(dict.fromkeys([*ranked_by_change["signature"].head(n_change), *by_count.index[:n_count]]))
    return [s for s in out if isinstance(s, str) and s]


_MIN_FRAGMENT = 3
_MAX_FRAGMENTS = 6


def _contains_all(messages: pd.Series, fragments: list[str]) -> np.ndarray:
    hit = np.ones(len(messages), dtype=bool)
    for f in fragments:
        hit &= messages.str.contains(f, regex=False).fillna(False).to_numpy(dtype=bool)
    return hit


def fragments(signature: str, own: pd.Series, others: pd.Series) -> tuple[list[str], float, float]:
    """The literal fragments that select ``signature``'s events: the text between its wildcards (whole runs
    when they match, else its words: the template's single spaces may stand for any whitespace), longest
    first, adding fragments until no other sampled signature's event holds them all (at most six).
    Returns (fragments, share of its own sampled events matched, share of the others matched)."""
    def usable(parts):
        return [p for p in dict.fromkeys(parts) if len(p) >= _MIN_FRAGMENT and "[REDACTED:" not in p]

    raw = [p.strip() for p in signature.split(WILDCARD)]
    runs = usable(raw)
    words = usable(w for p in raw for w in p.split())
    best = ([], 0.0, 1.0)
    for pool in (runs, words):
        pool = sorted(pool, key=len, reverse=True)
        chosen: list[str] = []
        for frag in pool:
            chosen.append(frag)
            if len(chosen) >= _MAX_FRAGMENTS or (len(others) and not _contains_all(others, chosen).any()):
                break
        if not chosen:
            continue
        cover = float(_contains_all(own, chosen).mean()) if len(own) else 0.0
        leak = float(_contains_all(others, chosen).mean()) if len(others) else 0.0
        if (cover, -leak) > (best[1], -best[2]):
            best = (chosen, cover, leak)
        if cover >= 0.99:
            break
    return best


def matchers(sample: pd.DataFrame, signature: pd.Series, chosen: list[str]) -> dict:
    """``{"signatures": {label: fragments}, "labels": {label: signature}, "coverage": {label: [own, others]}}``
    for the chosen signatures that have usable fragments."""
    messages = sample["message"].astype(str)
    sig = signature.astype(str)
    out: dict = {"signatures": {}, "labels": {}, "coverage": {}}
    for i, s in enumerate(chosen):
        frags, cover, leak = fragments(s, messages[sig == s], messages[sig != s])
        if not frags:
            continue
        label = f"sig_{i}"
        out["signatures"][label] = frags
        out["labels"][label] = s
        out["coverage"][label] = [round(cover, 4), round(leak, 4)]
    return out
