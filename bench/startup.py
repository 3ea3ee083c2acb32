"""Start-up: `freshindex up` from launch until `/readyz` answers 200, first and warm starts.

    .venv/bin/python -m bench.startup [--warm 2] [--port 8769]

The first start uses a fresh data directory (so it creates the embedded Postgres, applies
the migrations, exports the model and checks the backends); each warm start runs again on
that directory after a clean stop (SIGTERM). The folder watched is empty. Results go to
bench/results/.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.corpus import save_result
from bench.processes import FRESHINDEX, serving


def time_to_ready(data_dir: Path, port: int) -> float:
    """Seconds from launching `freshindex up` until /readyz is 200; stops it afterwards."""
    env = {**os.environ, "FRESHINDEX_DATA_DIR": str(data_dir), "FRESHINDEX_LOG_LEVEL": "WARNING"}
    for inherited in ("DATABASE_URL", "FRESHINDEX_DATABASE_URL", "FRESHINDEX_MODEL_CACHE_DIR"):
        env.pop(inherited, None)  # a first start creates its own database and export
    inbox = data_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    up = subprocess.Popen([FRESHINDEX, "up", "--watch", str(inbox), "--port", str(port)], env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            serving(client, up, poll_s=0.05)
        return time.perf_counter() - started
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm", type=int, default=2, help="Warm starts after the first.")
    parser.add_argument("--port", type=int, default=8769)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="freshindex-startup-"))
    first = time_to_ready(data_dir, args.port)
    warm = [time_to_ready(data_dir, args.port) for _ in range(args.warm)]
    save_result(
        "startup",
        {
            "first_start_s": round(first, 1),
            "warm_starts_s": [round(s, 1) for s in warm],
            "backend": os.environ.get("FRESHINDEX_EMBED_BACKEND", "auto"),
        },
    )


if __name__ == "__main__":
    main()
