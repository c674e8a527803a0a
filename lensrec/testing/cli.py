"""``lensrec`` run as a subprocess, for tests that need a real process (kill it mid-run,
run two at once, read its exit code and its one-line errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["run_cli"]


def run_cli(*args: str, cwd: str | Path) -> subprocess.Popen[str]:
    """Start ``python -m lensrec.cli ARGS`` in ``cwd`` with this lensrec first on the path;
    stdout and stderr are pipes (text)."""
    here = str(Path(__file__).resolve().parents[2])  # the directory that holds lensrec/
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "lensrec.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
