"""scripts/test_repeat.py (make test-repeat): the failures it reports are pytest's, with their test ids."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "test_repeat", Path(__file__).resolve().parents[2] / "scripts" / "test_repeat.py")
test_repeat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(test_repeat)


def test_failures_are_read_from_the_short_summary_with_their_ids():
    log = ("....F\n=== short test summary info ===\n"
           "FAILED notebooks/queue-backlog.ipynb::Cell 2 - pytest plugin exception: 143\n"
           "FAILED tests/trust/test_record_trust.py::test_replay_manifest_names_the_original_and_used_no_source"
           " - AssertionError: data/alb_access_logs.parquet\n"
           "ERROR tests/e2e/test_x.py::test_y\n1 failed, 1469 passed in 1182.00s\n")
    assert test_repeat.failures(log) == [
        ("FAILED", "notebooks/queue-backlog.ipynb::Cell 2", "pytest plugin exception: 143"),
        ("FAILED", "tests/trust/test_record_trust.py::test_replay_manifest_names_the_original_and_used_no_source",
         "AssertionError: data/alb_access_logs.parquet"),
        ("ERROR", "tests/e2e/test_x.py::test_y", "")]
    assert test_repeat.failures("1469 passed\n") == []


def test_the_busy_loops_stop_by_themselves():
    loops = test_repeat._busy_loops(0.5)
    try:
        assert all(p.wait(timeout=60) == 0 for p in loops)
    finally:
        for p in loops:
            if p.poll() is None:
                p.kill()


def test_loaded_runs_are_the_last_k_or_all_with_load():
    assert test_repeat.loaded_runs(5, False, 2) == [False, False, False, True, True]
    assert test_repeat.loaded_runs(3, True, None) == [True, True, True]
    assert test_repeat.loaded_runs(3, False, None) == [False, False, False]
    assert test_repeat.loaded_runs(2, False, 0) == [False, False]


def test_loaded_runs_beyond_the_runs_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        test_repeat.main(["--runs", "2", "--loaded-runs", "3"])
    assert exc.value.code == 2 and "--loaded-runs must be between 0 and --runs (2)" in capsys.readouterr().err
