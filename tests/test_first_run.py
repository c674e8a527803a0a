"""The first run compiles numba kernels ahead in parallel processes and says so; the next
run finds them cached and says nothing (issue 22, item 8). Each test uses its own empty
numba cache (NUMBA_CACHE_DIR), in a subprocess, as a fresh clone would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "lensrec.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    rows = ["user,item,rating"] + [
        f"{u},{i},{1 + (u * 7 + i) % 5}" for u in range(30) for i in range(20) if (u + i) % 3
    ]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "bench.toml").write_text(
        'dataset = "r.csv"\n'
        '[[runs]]\nmodel = "popularity"\nsplit = "random:0.2"\n'
        '[[runs]]\nmodel = "item-knn"\nsplit = "random:0.2"\n'
    )
    return tmp_path


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="compiling ahead needs two cores")
def test_benchmark_compiles_ahead_once_and_says_so(tiny: Path):
    from lensrec.experiments.warm import Precompiler  # noqa: F401 - the module exists

    cache = tiny / "numba"
    first = _run(["benchmark", "bench.toml", "--runs-dir", "runs"], cache, tiny)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("compiling numba kernels for 2 models")
    assert any(line.startswith("kernels compiled in") for line in lines)
    # the workers filled numba's cache: item-knn's kernel is there, and (with the report's
    # extra) umap-learn's functions, which umap-learn itself never caches
    assert list(cache.rglob("knn.item_knn_kernel-*.nbi"))
    try:
        import umap  # noqa: F401
    except ImportError:
        pass
    else:
        assert "and the report's UMAP maps (first run" in lines[0]
        assert any(p.parent.name.startswith("umap") for p in cache.rglob("layouts.*.nbi"))
    second = _run(["benchmark", "bench.toml", "--runs-dir", "runs"], cache, tiny)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stdout and "compiled" not in second.stdout
    # a single evaluate of a model compiled ahead says nothing either; a new one does
    quiet = _run(["evaluate", "--dataset", "r.csv", "--split", "random:0.2", "--model",
                  "item-knn", "--runs-dir", "runs"], cache, tiny)  # fmt: skip
    assert quiet.returncode == 0 and "compiling" not in quiet.stderr
    told = _run(["evaluate", "--dataset", "r.csv", "--split", "random:0.2", "--model",
                 "ease", "--runs-dir", "runs"], cache, tiny)  # fmt: skip
    assert told.returncode == 0 and "compiling numba kernels for ease (first run" in told.stderr
