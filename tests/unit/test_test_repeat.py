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
