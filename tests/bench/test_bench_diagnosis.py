"""The diagnosis on a bank of generated incidents (tests/diagnosis_bank.py): top-1 right and false primaries.

Each incident is a findings.json-shaped input built from how AWS and PostgreSQL document their behaviour,
on a platform of its own (names, Region, account, onset time, timings) with noise every window carries (a
cheap statement "5x slower" from one call, a CI role's new session reading a secret from a known
address, retries of an unrelated task hours earlier). Healthy windows carry only the noise.

Split: fixed by ``diagnosis_bank.SPLIT_SEED`` before any result was seen; each mechanism once in *tune*
and once in *held_out* (other seeds: other names, Region, timings). The runbook entries were changed
looking at *tune* only; *held_out* is printed, never used to choose. Goal (issue 21): top-1 right on
>= 9 of 10 unseen incidents, no false primary on healthy windows. Run with ``make bench`` (or -s).
"""

from __future__ import annotations

from forensics import diagnosis
from tests.diagnosis_bank import CONCURRENT, MECHANISMS, SPLIT_SEED, bank, score


def _print(part: str, result: dict) -> None:
    print(f"\ndiagnosis bank ({part}, seed {SPLIT_SEED}): top-1 right {result['top1_right']}/{result['incidents']}, "
          f"false primaries {result['false_primaries']}/{result['healthy_windows']} healthy windows, "
          f"second incident of a pair listed as concurrent {result['concurrent_right']}/{result['concurrent']}")
    for name, expected, got in result["misses"]:
        print(f"  miss {name}: expected {expected}, got {got}")


def test_bench_diagnosis_bank():
    rb = diagnosis.load()
    parts = bank()
    assert len(parts["tune"]) >= 12 + 4 and len(parts["held_out"]) >= 12 + 4
    results = {part: score(cases, lambda f: diagnosis.diagnose(f, rb)) for part, cases in parts.items()}
    for part in ("tune", "held_out"):
        _print(part, results[part])
    held = results["held_out"]
    assert held["incidents"] == len(MECHANISMS) + len(CONCURRENT)
    # issue 21's goal, scaled to the bank: at least 90 % top-1 on the held-out part, no false primary
    assert held["top1_right"] >= 0.9 * held["incidents"], held["misses"]
    assert held["false_primaries"] == 0, held["misses"]
