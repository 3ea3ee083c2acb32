"""The `freshindex` processes the benchmarks start, and waiting for them to serve."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

FRESHINDEX = str(Path(sys.executable).with_name("freshindex"))


def serving(
    client: httpx.Client,
    process: subprocess.Popen[bytes],
    *,
    within_s: float = 600,
    poll_s: float = 0.5,
) -> None:
    """Wait until the process's API answers /readyz with 200 (checked every `poll_s`); exit
    if the process ends first or is not ready within `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{process.args!r} was not ready within {within_s:.0f} s")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(poll_s)
