"""scripts/idle_cores.py: how many torch threads `make run` gives (the cores idle now)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "idle_cores.py"
spec = importlib.util.spec_from_file_location("idle_cores", SCRIPT)
idle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(idle)


def test_cpu_times_reads_the_aggregate_line():
    text = "cpu  100 5 20 300 7 1 2 3 50 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    # idle + iowait; user nice system idle iowait irq softirq steal (guest is inside user)
    assert idle.cpu_times(text) == (307, 438)


def test_idle_cores_counts_whole_idle_cores():
    # 2 cores over one second: 200 jiffies, of which idle 200 / 100 / 10
    assert idle.idle_cores((0, 0), (200, 200), 2) == 2  # idle machine
    assert idle.idle_cores((0, 0), (100, 200), 2) == 1  # one job on one core
    assert idle.idle_cores((0, 0), (10, 200), 2) == 1  # busy: still at least one
    assert idle.idle_cores((0, 0), (1300, 1600), 16) == 13
    assert idle.idle_cores((5, 9), (5, 9), 4) == 4  # no time passed: the cores


def test_script_prints_a_core_count():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True)
    assert 1 <= int(out.stdout) <= (os.cpu_count() or 1)
