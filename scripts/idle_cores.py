#!/usr/bin/env python3
"""Print how many cores are idle now: the CPU time /proc/stat counts as idle over one
second, in cores, rounded, at least 1 (`make run` gives torch that many threads).  Where
/proc/stat is missing (not Linux), the cores less the whole part of the last minute's load
average.  The load average lags by a minute: right after a job ends it still reads ~1, so
it is only the fallback."""

from __future__ import annotations

import os
import time


def cpu_times(text: str) -> tuple[int, int]:
    """(idle, total) jiffies of /proc/stat's aggregate ``cpu`` line (idle includes iowait;
    guest time is already inside user time, so it is not added again)."""
    fields = [int(v) for v in text.split("\n", 1)[0].split()[1:9]]
    return fields[3] + fields[4], sum(fields)


def idle_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> int:
    """Whole cores idle between two ``cpu_times`` samples, at least 1."""
    idle, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return cores
    return max(1, min(cores, round(cores * idle / total)))


def main() -> int:
    cores = os.cpu_count() or 1
    try:
        with open("/proc/stat") as f:
            before = cpu_times(f.read())
        time.sleep(1.0)
        with open("/proc/stat") as f:
            after = cpu_times(f.read())
    except OSError:
        print(max(1, cores - int(os.getloadavg()[0])))
        return 0
    print(idle_cores(before, after, cores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
