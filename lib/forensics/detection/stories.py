"""Every suspicious actor's whole story, ranked by evidence rather than by how many calls it made.

:func:`detect` runs the rules and the behaviour signals over the window and the baseline and returns a
:class:`Detection`:

- ``flagged``: every flagged call (a rule hit or a behaviour signal), in time order; never cut;
- ``actors``: one row per story with its evidence and score; suspicious ones first, by score;
- ``story(actor)``: its calls in order, grouped by (caller, event name): count, first and last time,
  errors, resources, and the signals and rules on them.

Score of a story (weights: one rule or signal *kind* counts once per API, capped, so that a chatty actor
does not outrank a quiet one that did one decisive thing):
rule hits by level (low 1, medium 2, high 3, critical 4, once per rule); ``role_outside_network`` 5;
``denied_burst`` 3; ``enumeration`` 2; ``new_actor_mutation`` 1 per API (at most 5); ``first_seen_api``
0.5 per API (at most 2.5: new APIs alone are routine); ``sensitive_call`` 1 per API (at most 4). A story is
suspicious at :data:`SUSPICIOUS_SCORE` or more. Suspicious stories whose principal is new to the account
(no call in the baseline: what a leaked credential looks like) come first, then by score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from . import actors as _actors
from . import behaviour, sigma

LEVEL_WEIGHT = {"informational": 0.0, "low": 1.0, "medium": 2.0, "high": 3.0, "critical": 4.0}
#: (weight per distinct API or once, cap)
SIGNAL_WEIGHT = {"role_outside_network": (5.0, 5.0), "denied_burst": (3.0, 3.0), "enumeration": (2.0, 2.0),
                 "new_actor_mutation": (1.0, 5.0), "first_seen_api": (0.5, 2.5), "sensitive_call": (1.0, 4.0)}
ONCE = {"role_outside_network", "denied_burst", "enumeration"}
SUSPICIOUS_SCORE = 3.0
TEXT_MAX = 200

ACTOR_COLUMNS = ["story", "score", "suspicious", "new_to_account", "calls", "flagged_calls", "first_seen", "last_seen",
                 "rules", "signals", "mutations", "denied", "first_seen_apis", "principals", "addresses", "agents"]
FLAGGED_COLUMNS = ["timestamp", "story", "actor", "event_name", "event_source", "error_code", "resource", "signals",
                   "rules", "levels", "attack"]


def _short(text, limit: int = TEXT_MAX) -> str:
    s = "" if text is None or (isinstance(text, float) and text != text) else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


@dataclass
class Detection:
    frame: pd.DataFrame               # the annotated window
    hits: pd.DataFrame                # rule hits: row, rule_id, title, level, tags, source
    signals: pd.DataFrame             # behaviour signals: row, signal, detail
    flagged: pd.DataFrame             # every flagged call
    actors: pd.DataFrame              # stories ranked
    skipped_rules: list[dict] = field(default_factory=list)
    baseline_rows: int = 0

    @property
    def suspicious(self) -> pd.DataFrame:
        return self.actors[self.actors["suspicious"]] if len(self.actors) else self.actors

    def story(self, story: str) -> pd.DataFrame:
        return story_of(self, story)

    def decisive(self, story: str, limit: int = 5) -> list[str]:
        """The story's strongest calls, for a diagnosis line: event × count and why."""
        s = self.story(story)
        if not len(s):
            return []
        s = s[s["weight"] > 0].sort_values(["weight", "first"], ascending=[False, True], kind="stable").head(limit)
        return [f"{r['event_name']} ×{r['calls']} ({', '.join((r['rules'] or []) + (r['signals'] or []))})"
                for r in s.to_dict(orient="records")]


def _per_row(det_rows: pd.DataFrame, key: str) -> dict:
    out: dict = {}
    for row, val in zip(det_rows["row"], det_rows[key]):
        out.setdefault(row, [])
        if val not in out[row]:
            out[row].append(val)
    return out


def detect(window: pd.DataFrame, baseline: pd.DataFrame | None = None, *, rules: sigma.RuleSet | None = None,
           sensitive: Iterable[str] = (), only_signals: Iterable[str] | None = None, use_rules: bool = True,
           **params) -> Detection:
    """Rules and behaviour signals over ``window`` (a trail frame) against ``baseline`` (the days before)."""
    frame = _actors.annotate(window if window is not None else pd.DataFrame())
    base = _actors.annotate(baseline) if baseline is not None and len(baseline) else None
    if use_rules:
        rules = rules if rules is not None else sigma.load_rules()
        hits, skipped = sigma.evaluate(frame, rules)
    else:
        hits, skipped = pd.DataFrame(columns=sigma.HIT_COLUMNS), []
    sig = behaviour.signals(frame, base, sensitive=sensitive, only=only_signals, **params) if len(frame) \
        else behaviour._empty()
    flagged = _flagged(frame, hits, sig)
    actors = _rank(frame, hits, sig, None if base is None else set(base["who"]))
    return Detection(frame, hits, sig, flagged, actors, skipped, 0 if base is None else len(base))


def _flagged(frame: pd.DataFrame, hits: pd.DataFrame, sig: pd.DataFrame) -> pd.DataFrame:
    rows = sorted(set(hits["row"]) | set(sig["row"]))
    if not rows:
        return pd.DataFrame(columns=FLAGGED_COLUMNS)
    by_sig = _per_row(sig, "signal")
    by_rule = _per_row(hits, "title")
    by_level = _per_row(hits, "level")
    attack: dict = {}
    for row, tags in zip(hits["row"], hits["tags"]):
        attack.setdefault(row, [])
        attack[row] += [t for t in tags if t not in attack[row]]
    df = frame.loc[rows]
    out = pd.DataFrame({
        "timestamp": df["timestamp"], "story": df["story"].map(_short), "actor": df["actor"].map(_short),
        "event_name": df["event_name"].map(_short), "event_source": df["event_source"].map(_short),
        "error_code": df["error_code"].map(lambda v: None if pd.isna(v) else _short(v)),
        "resource": df["resource"].map(_short) if "resource" in df.columns else None,
        "signals": [by_sig.get(r, []) for r in rows], "rules": [by_rule.get(r, []) for r in rows],
        "levels": [by_level.get(r, []) for r in rows], "attack": [attack.get(r, []) for r in rows]})
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)[FLAGGED_COLUMNS]


def _score(h: pd.DataFrame, s: pd.DataFrame, names: pd.Series) -> float:
    """Evidence of one story from its rule hits ``h`` and behaviour signals ``s``."""
    score = 0.0
    for _, level in h.drop_duplicates("rule_id")[["rule_id", "level"]].itertuples(index=False):
        score += LEVEL_WEIGHT.get(level, 2.0)
    for name, g in s.groupby("signal"):
        weight, cap = SIGNAL_WEIGHT.get(name, (1.0, 1.0))
        n = 1 if name in ONCE else names.loc[g["row"]].nunique()
        score += min(cap, weight * n)
    return score


def _rank(frame: pd.DataFrame, hits: pd.DataFrame, sig: pd.DataFrame, known: set | None = None) -> pd.DataFrame:
    """Stories ranked: suspicious first; among them actors whose principal is new to the account (what a
    leaked credential looks like; unknown without a baseline), then by score, then earliest."""
    if not len(frame):
        return pd.DataFrame(columns=ACTOR_COLUMNS)
    names = frame["event_name"].astype(str)
    hits = hits.assign(story=frame.loc[hits["row"], "story"].to_numpy()) if len(hits) else hits.assign(story=[])
    sig = sig.assign(story=frame.loc[sig["row"], "story"].to_numpy()) if len(sig) else sig.assign(story=[])
    hits_by = dict(tuple(hits.groupby("story"))) if len(hits) else {}
    sig_by = dict(tuple(sig.groupby("story"))) if len(sig) else {}
    empty_h, empty_s = hits.iloc[0:0], sig.iloc[0:0]
    recs = []
    story_who = dict(zip(frame["actor"], frame["who"]))  # a story is named by its root actor
    for story, g in frame.groupby("story", sort=False):
        h, s = hits_by.get(story, empty_h), sig_by.get(story, empty_s)
        recs.append({
            "story": _short(story), "score": _score(h, s, names), "calls": len(g),
            "new_to_account": None if known is None else story_who.get(story) not in known,
            "flagged_calls": len(set(h["row"]) | set(s["row"])), "first_seen": g["timestamp"].min(),
            "last_seen": g["timestamp"].max(),
            "rules": sorted(set(f"{t} ({lvl})" for t, lvl in zip(h["title"], h["level"]))),
            "signals": sorted(set(s["signal"])), "mutations": int(g["mutating"].sum()),
            "denied": int(g["denied"].sum()),
            "first_seen_apis": int(names.loc[s.loc[s["signal"] == "first_seen_api", "row"]].nunique()),
            "principals": sorted(set(g["who"].map(_short)))[:20],
            "addresses": sorted(set(g["source_ip"].astype(str)))[:20], "agents": sorted(set(g["agent"]))[:20]})
    out = pd.DataFrame(recs)
    out["suspicious"] = out["score"] >= SUSPICIOUS_SCORE
    out["_new"] = out["new_to_account"].fillna(False).astype(bool)
    out = out.sort_values(["suspicious", "_new", "score", "first_seen"], ascending=[False, False, False, True],
                          kind="stable")
    return out.reset_index(drop=True)[ACTOR_COLUMNS]


def story_of(det: Detection, story: str) -> pd.DataFrame:
    """One story's calls in order: (caller, event name) with count, first/last, errors, resources, signals,
    rules and a weight (the strongest evidence on those calls)."""
    cols = ["caller", "event_name", "calls", "first", "last", "errors", "resources", "signals", "rules", "weight"]
    g = det.frame[det.frame["story"].map(_short) == story]
    if not len(g):
        return pd.DataFrame(columns=cols)
    by_sig, by_rule = _per_row(det.signals, "signal"), _per_row(det.hits, "title")
    by_level = _per_row(det.hits, "level")
    recs = []
    for (caller, name), c in g.groupby(["actor", "event_name"], sort=False):
        errors: dict = {}
        for e in c["error_code"].dropna().astype(str):
            errors[_short(e, 80)] = errors.get(_short(e, 80), 0) + 1
        res = sorted(set(c["resource"].dropna().astype(str))) if "resource" in c.columns else []
        sigs = sorted({s for r in c.index for s in by_sig.get(r, [])})
        rules = sorted({s for r in c.index for s in by_rule.get(r, [])})
        levels = {lv for r in c.index for lv in by_level.get(r, [])}
        weight = max([LEVEL_WEIGHT.get(lv, 2.0) for lv in levels] + [SIGNAL_WEIGHT[s][0] for s in sigs] + [0.0])
        recs.append({"caller": _short(caller), "event_name": _short(name), "calls": len(c),
                     "first": c["timestamp"].min(), "last": c["timestamp"].max(), "errors": errors,
                     "resources": [_short(x) for x in res[:10]]
                     + ([f"… {len(res) - 10} more"] if len(res) > 10 else []),
                     "signals": sigs, "rules": rules, "weight": weight})
    return pd.DataFrame(recs).sort_values("first", kind="stable").reset_index(drop=True)[cols]
