"""CPU seconds spent by the embedded Postgres and by this process: how much work runs beside
the model, which on a machine whose cores the model fills cannot be hidden by overlap."""

from __future__ import annotations

import time
from pathlib import Path

import psutil


def postgres_cpu_s(data_dir: Path) -> float:
    """User + system seconds of the embedded server in `data_dir`: the postmaster, its
    live processes and the ones that have exited (counted into the postmaster when reaped)."""
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    times = postmaster.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children(recursive=True):
        try:
            own = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # exited meanwhile: counted in the postmaster once reaped
        total += own.user + own.system
    return total


def own_cpu_s() -> float:
    return time.process_time()
