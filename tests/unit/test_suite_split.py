"""`make test` splits the suite across pytest-xdist processes by test file (conftest.py): the files that read
the session's catalogue record are named there, so they run in the process whose sandbox wrote it."""

import conftest


def test_every_record_reader_named_in_conftest_is_a_test_file():
    missing = [path for path in conftest.RECORD_READERS if not (conftest.REPO / path).is_file()]
    assert missing == [], f"renamed or removed: {missing}"


def test_make_test_runs_the_suite_in_test_jobs_processes():
    makefile = (conftest.REPO / "Makefile").read_text()
    assert "TEST_JOBS ?= 2" in makefile and "-n $(TEST_JOBS)" in makefile
