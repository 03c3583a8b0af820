"""Security detection over a real attack trail: techniques surfaced, false alarms, time.

The report set is data/real/cloudtrail/invictus-ir_aws_dataset (a real account: one attacker running an
attack-simulation tool's techniques among set-up and background traffic; labels in invictus_labels.yaml,
used only to score). The trail has no days before it, so the run is **cold**: the baseline is empty and
the baseline signals (first-seen API, mutations by new actors, usual networks from the baseline) cannot
fire; they are covered by unit tests on hand-made records (tests/unit/test_detection_behaviour.py).

Three arms, each printed: the whole detection (rules + behaviour + hand list, actors' stories), SigmaHQ's
rules alone, the hand-written list alone.

- *surfaced*: a technique with one of its detonation calls in the findings: for the whole detection, in
  the story of a suspicious actor (findings.json keeps those stories whole) and, stricter, flagged itself;
  for an arm alone, flagged by it.
- *false alarms*: background actors (neither the attacker's detonations nor the tool's own set-up)
  flagged: for the whole detection, suspicious stories made only of background calls; for an arm alone,
  background actors with a flagged call. Flags on the tool's set-up are printed apart.
"""

from __future__ import annotations

import glob
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forensics.analysis import security
from forensics.detection import sigma, stories
from forensics.sources import _typed
from forensics.sources.cloudtrail import RECORD_COLUMNS, record_row

TRAIL = Path("/work/shared/data/real/cloudtrail/invictus-ir_aws_dataset")
for _parent in Path(__file__).resolve().parents:
    if (_parent.parent / "shared" / "data" / "real" / "cloudtrail" / "invictus-ir_aws_dataset").is_dir():
        TRAIL = _parent.parent / "shared" / "data" / "real" / "cloudtrail" / "invictus-ir_aws_dataset"
        break
LABELS = Path(__file__).with_name("invictus_labels.yaml")
_STAMP = re.compile(r"stratus-red-team_([0-9a-f]{8})")

pytestmark = pytest.mark.skipif(not TRAIL.is_dir(), reason=f"{TRAIL} is not here")


def _trail() -> pd.DataFrame:
    records = []
    for path in sorted(glob.glob(str(TRAIL / "*.json"))):
        records += json.loads(Path(path).read_text())["Records"]
    df = _typed(pd.DataFrame([record_row(r) for r in records]), RECORD_COLUMNS)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _labels(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(technique or None, kind: attack | setup | background) per row."""
    runs = yaml.safe_load(LABELS.read_text())["techniques"]
    run_of = {run: tech for tech, rs in runs.items() for run in rs}
    tech, kind = [], []
    for ua, p, ip in zip(df["user_agent"].fillna(""), df["principal"].fillna(""), df["source_ip"].fillna("")):
        m = _STAMP.search(ua)
        role = f"role:{p.split('/')[1]}@{ip}" if ":assumed-role/" in p else None
        key = m.group(1) if m else role
        if "Terraform" not in ua and key in run_of:
            tech.append(run_of[key])
            kind.append("attack")
        elif m or "stratus-red-team" in p or "Terraform" in ua:
            tech.append(None)
            kind.append("setup")
        else:
            tech.append(None)
            kind.append("background")
    return pd.Series(tech, index=df.index), pd.Series(kind, index=df.index)


def _score_rows(flagged_rows, tech, kind, frame) -> dict:
    rows = pd.Index(sorted(set(flagged_rows)))
    found = set(tech.loc[rows].dropna())
    bg = rows[kind.loc[rows].eq("background").to_numpy()]
    return {"techniques": len(found), "missed": sorted(set(tech.dropna()) - found),
            "false_alarm_actors": int(frame.loc[bg, "actor"].nunique()) if len(bg) else 0,
            "false_alarm_calls": len(bg), "setup_calls_flagged": int(kind.loc[rows].eq("setup").sum())}


def test_bench_security_invictus(capsys):
    df = _trail()
    tech, kind = _labels(df)
    total = tech.dropna().nunique()

    t0 = time.perf_counter()
    det = stories.detect(df, None, sensitive=security.SENSITIVE_EVENTS)
    t_all = time.perf_counter() - t0
    frame = det.frame
    sus = set(det.suspicious["story"])
    in_story = frame.index[frame["story"].map(stories._short).isin(sus).to_numpy()]
    whole = _score_rows(in_story, tech, kind, frame)
    bg_stories = [s for s in sus
                  if kind.loc[frame.index[frame["story"].map(stories._short) == s]].eq("background").all()]
    whole["false_alarm_actors"] = len(bg_stories)
    flagged_self = _score_rows(set(det.hits["row"]) | set(det.signals["row"]), tech, kind, frame)

    t0 = time.perf_counter()
    rules_only = stories.detect(df, None, sensitive=(), only_signals=())
    t_rules = time.perf_counter() - t0
    sigma_arm = _score_rows(set(rules_only.hits["row"]), tech, kind, rules_only.frame)

    t0 = time.perf_counter()
    list_only = stories.detect(df, None, sensitive=security.SENSITIVE_EVENTS, only_signals=("sensitive_call",),
                               use_rules=False)
    t_list = time.perf_counter() - t0
    list_arm = _score_rows(set(list_only.signals["row"]), tech, kind, list_only.frame)

    # warm: the trail's first 60% of records as the baseline, the rest as the window (a fixed split, as the
    # sandbox does; the attack runs through both parts, so only techniques detonated in the window count)
    cut = df["timestamp"].iloc[int(len(df) * 0.6)]
    win_mask = (df["timestamp"] >= cut).to_numpy()
    win, base = df[win_mask], df[~win_mask]
    t0 = time.perf_counter()
    warm = stories.detect(win, base, sensitive=security.SENSITIVE_EVENTS)
    t_warm = time.perf_counter() - t0
    wsus = set(warm.suspicious["story"])
    wf = warm.frame
    w_in = wf.index[wf["story"].map(stories._short).isin(wsus).to_numpy()]
    w_tech, w_kind = tech.loc[win.index], kind.loc[win.index]
    warm_score = _score_rows(w_in, w_tech, w_kind, wf)
    warm_bg = [s for s in wsus if w_kind.loc[wf.index[wf["story"].map(stories._short) == s]].eq("background").all()]
    warm_total = w_tech.dropna().nunique()

    with capsys.disabled():
        print(f"\nsecurity bench: {len(df)} records, {total} labelled techniques, cold (no baseline)")
        print(f"  whole detection (stories of suspicious actors): {whole['techniques']}/{total} techniques, "
              f"{whole['false_alarm_actors']} false-alarm actors, {len(sus)} suspicious stories, "
              f"set-up calls in them {whole['setup_calls_flagged']}, {t_all:.2f} s; missed {whole['missed']}")
        print(f"  whole detection (the call itself flagged):      {flagged_self['techniques']}/{total}, "
              f"{flagged_self['false_alarm_actors']} background actors with a flagged call "
              f"({flagged_self['false_alarm_calls']} calls); missed {flagged_self['missed']}")
        print(f"  SigmaHQ rules alone: {sigma_arm['techniques']}/{total}, {sigma_arm['false_alarm_actors']} "
              f"background actors ({sigma_arm['false_alarm_calls']} calls), {t_rules:.2f} s; "
              f"missed {sigma_arm['missed']}")
        print(f"  hand list alone:     {list_arm['techniques']}/{total}, {list_arm['false_alarm_actors']} "
              f"background actors ({list_arm['false_alarm_calls']} calls), {t_list:.2f} s; "
              f"missed {list_arm['missed']}")
        print(f"  warm (first 60% as baseline): {warm_score['techniques']}/{warm_total} techniques detonated in the "
              f"window, {len(warm_bg)} false-alarm actors, {len(wsus)} suspicious stories, {t_warm:.2f} s; "
              f"missed {warm_score['missed']}")
        for r in det.suspicious.head(8).to_dict(orient="records"):
            print(f"    {r['score']:5.1f}  {r['story'][:110]}  {r['signals']}")
    assert whole["techniques"] >= sigma_arm["techniques"]
    assert whole["techniques"] >= list_arm["techniques"]
    assert warm_score["techniques"] <= warm_total
