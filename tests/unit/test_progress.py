"""The progress reporter: rewritten status line on a terminal, rate-limited plain lines elsewhere, and
cell reports crossing a real process boundary through a multiprocessing queue."""

from __future__ import annotations

import io
import multiprocessing

from forensics.progress import Progress, cell_hook


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_are_rate_limited_per_notebook_and_never_carry_control_characters():
    lines, clock = [], Clock()
    p = Progress(lines.append, stream=io.StringIO(), interval=10, clock=clock)
    assert p.tty is False
    for i in range(1, 6):  # five cells within 4 s: only the first one is printed
        p.cell("api-errors", i, 9, f"step_{i}()")
        p.cell("db-connections", i, 7)
        clock.t += 1
    clock.t = 11
    p.cell("api-errors", 6, 9, "x = 1")
    p.captures(3, 10)
    p.captures(4, 10)  # within the interval: dropped
    p.captures(10, 10)  # the last one: always
    p.notebook_done("api-errors", "ok", 12.34)
    p.notebook_done("db-connections", "failed", 3.0, "ValueError: boom")
    assert lines == [
        "api-errors cell 1/9: step_1()", "db-connections cell 1/7", "api-errors cell 6/9: x = 1",
        "captures 3/10", "captures 10/10", "  ok     api-errors (12.3 s)",
        "  FAILED db-connections (3.0 s): ValueError: boom",
    ]
    assert not any("\r" in line or "\033" in line for line in lines)


def test_a_terminal_gets_one_status_line_rewritten_and_lasting_lines_above_it():
    tty = FakeTTY()
    p = Progress(lambda m: None, stream=tty)
    assert p.tty is True
    p.cell("api-errors", 1, 3, "a" * 80)
    p.cell("overview", 2, 5)
    p.notebook_done("api-errors", "ok", 1.0)
    p.cell("api-errors", 3, 3)  # late: the notebook is done, nothing is drawn for it
    p.close()
    out = tty.getvalue()
    # the last status before the notebook finished shows both notebooks, the label shortened
    assert f"api-errors cell 1/3: {'a' * 45}... | overview cell 2/5" in out
    assert "\r\033[K  ok     api-errors (1.0 s)\n" in out
    assert "api-errors cell 3/3" not in out
    assert out.endswith("\r\033[K")  # close() leaves a clean line


def _worker(queue, cells):
    hook = cell_hook(queue, "overview", cells)
    for i, c in enumerate(cells + [{"cell_type": "code", "source": "x"}]):
        if c["cell_type"] == "code":
            hook(cell=c, cell_index=i)


def test_cell_reports_cross_a_process_boundary():
    cells = [{"cell_type": "markdown", "source": "# Title"},
             {"cell_type": "code", "source": ["# comment\n", "inc = session.open(incident_file)\n"]},
             {"cell_type": "code", "source": "   "},
             {"cell_type": "code", "source": "charts.plot(inc)"}]
    lines = []
    p = Progress(lines.append, interval=0)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with p.listen(queue):
        proc = ctx.Process(target=_worker, args=(queue, cells))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
    # two code cells with source + papermill's injected parameters cell = 3
    assert lines == ["overview cell 1/3: inc = session.open(incident_file)", "overview cell 2/3",
                     "overview cell 3/3: charts.plot(inc)", "overview cell 4/4: x"]
