"""Benchmark corpora (real documents no one here wrote, from Debian packages) and where
results go."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

POSTGRES_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")


def postgres_manual() -> Path:
    """The PostgreSQL 15 manual as HTML (Debian's postgresql-doc-15), installed if missing."""
    if not POSTGRES_DOCS.is_dir():
        if os.geteuid() != 0:
            raise SystemExit("run as root, or: sudo apt-get install postgresql-doc-15")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql-doc-15"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return POSTGRES_DOCS


def copy_files(source: Path, target: Path, count: int) -> list[Path]:
    """Copy the first `count` HTML files (by name, so runs are comparable) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.glob("*.html"))[:count]
    return [Path(shutil.copy2(f, target / f.name)) for f in files]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def p50_p99_ms(name: str, milliseconds: list[float]) -> dict[str, float]:
    """{name_p50_ms, name_p99_ms}, rounded to 0.1 ms."""
    return {f"{name}_p{q}_ms": round(percentile(milliseconds, q), 1) for q in (50, 99)}


def save_result(name: str, result: dict[str, Any], out: Path | None = None) -> None:
    """Print the result and keep it as <out>/<name>_<time>.json (default bench/results/)."""
    out = out or Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out / f"{name}_{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(text)
    print(text)
