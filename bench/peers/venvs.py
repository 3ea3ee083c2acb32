"""One virtual environment per peer, from its pinned requirements, under bench/peers/.venvs/.

    .venv/bin/python -m bench.peers.venvs [langchain] [cocoindex]

Made with the project's uv (`uv venv --python 3.11`, `uv pip install -r`), and reused while
its requirements.txt is unchanged (a stamp holds the file's hash). A peer never shares our
environment: its dependencies are its own, and ours cannot change its numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
PEERS = ("langchain", "cocoindex")
UV = Path(sys.executable).with_name("uv")  # installed into .venv by `make install`


def python(peer: str) -> Path:
    """The interpreter of `peer`'s environment, (re)made if its requirements changed."""
    requirements = HERE / peer / "requirements.txt"
    venv = VENVS / peer
    interpreter = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if interpreter.exists() and stamp.exists() and stamp.read_text() == digest:
        return interpreter
    # only-system: a missing 3.11 fails here instead of uv fetching a Python build
    uv_venv = ["venv", "--clear", "--python", "3.11", "--python-preference", "only-system"]
    subprocess.run([str(UV), *uv_venv, str(venv)], check=True)
    install = ["pip", "install", "--python", str(interpreter), "-r", str(requirements)]
    subprocess.run([str(UV), *install], check=True)
    stamp.write_text(digest)
    return interpreter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peers", nargs="*", help=f"of {', '.join(PEERS)} (default: all)")
    peers = parser.parse_args().peers or PEERS
    if unknown := set(peers) - set(PEERS):
        parser.error(f"no such peer: {', '.join(sorted(unknown))}")
    for peer in peers:
        print(peer, python(peer))


if __name__ == "__main__":
    main()
