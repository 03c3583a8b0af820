"""Onset detection on the 6 real AWS CloudWatch series of the Numenta Anomaly Benchmark.

Data: numenta/NAB @ ea702d75 (data/realAWSCloudwatch, labels/combined_windows.json), MIT licence,
read from shared/data/real/nab. A labelled window is *hit* when an episode overlaps it; an episode
overlapping no window is a *false alarm*. Run with ``make bench`` (or pytest -s) to see the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from forensics.analysis.onset import find_onsets

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "nab"
#: Measured with the defaults when this benchmark was written; a drop below means a regression.
HIT_SHARE_FLOOR = 0.5


def _load(path: Path) -> pd.Series:
    frame = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])).tz_localize("UTC")
    return pd.Series(frame["value"].to_numpy(dtype=float), index=index, name=path.stem)


def evaluate(series: pd.Series, windows: list[tuple[pd.Timestamp, pd.Timestamp]], **kwargs) -> dict:
    episodes = find_onsets(series, **kwargs)
    hit = [
        bool(((episodes["start"] <= w1) & (episodes["end"] >= w0)).any()) if len(episodes) else False
        for w0, w1 in windows
    ]
    false_alarms = 0
    for start, end in zip(episodes["start"], episodes["end"]):
        if not any(start <= w1 and end >= w0 for w0, w1 in windows):
            false_alarms += 1
    return {"windows": len(windows), "hit": sum(hit), "episodes": len(episodes), "false_alarms": false_alarms}


CONFIGS = {
    "defaults (median/MAD over 60 samples, z>=6, >=3 samples)": {},
    "stricter (>=4 samples)": {"min_duration": 4},
}


def test_nab_realawscloudwatch():
    if not (NAB / "series").is_dir():
        pytest.skip(f"{NAB} is absent")
    labels = json.loads((NAB / "labels_windows.json").read_text())
    data = []
    for path in sorted((NAB / "series").glob("*.csv")):
        key = next(k for k in labels if k.endswith("/" + path.name))
        windows = [
            (pd.Timestamp(a).tz_localize("UTC"), pd.Timestamp(b).tz_localize("UTC")) for a, b in labels[key]
        ]
        data.append((path.stem, _load(path), windows))
    shares = {}
    for name, kwargs in CONFIGS.items():
        table = pd.DataFrame([{"series": stem, **evaluate(s, w, **kwargs)} for stem, s, w in data])
        total = table[["windows", "hit", "episodes", "false_alarms"]].sum()
        table["hit_share"] = table["hit"] / table["windows"]
        shares[name] = hit_share = total["hit"] / total["windows"]
        print(f"\nOnset detection on NAB realAWSCloudwatch, {name}")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print(
            f"TOTAL windows={total['windows']} hit={total['hit']} hit_share={hit_share:.2f} "
            f"episodes={total['episodes']} false_alarms={total['false_alarms']}"
        )
        assert len(table) == 6
    assert shares[next(iter(CONFIGS))] >= HIT_SHARE_FLOOR
