"""recommend / similar_items give the same lists as before the ranking path moved to
lensrec.retrieval: every model, on the seeded data of ``make_known_lists.py``.

``known_lists.json`` was written by ``make_known_lists.py`` on the code before the move
(commit 6b485d6), except biased-mf's, rewritten at 9b5a7b7: its reg_factors="auto" search now
stops a candidate that falls behind, and on this small data (5 epochs) that changes the value
chosen (now 0.05): the model changed, not the ranking path. Ids must match exactly, except where two neighbouring scores tie within
float32 rounding (then either order is right); scores must match to float32 rounding.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def _module():
    spec = importlib.util.spec_from_file_location("make_known_lists", HERE / "make_known_lists.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def lists(monkeypatch_module=None):
    import os

    old = os.environ.get("LENSREC_THREADS")
    os.environ["LENSREC_THREADS"] = "1"
    try:
        now = _module().lists()
    finally:
        if old is None:
            os.environ.pop("LENSREC_THREADS", None)
        else:
            os.environ["LENSREC_THREADS"] = old
    saved = json.loads((HERE / "known_lists.json").read_text())
    return saved, now


def _same_lists(name: str, what: str, saved: list, now: list) -> None:
    ids0, s0 = np.asarray(saved[0]), np.asarray(saved[1], dtype=np.float64)
    ids1, s1 = np.asarray(now[0]), np.asarray(now[1], dtype=np.float64)
    assert ids0.shape == ids1.shape, f"{name} {what}: shape {ids1.shape} != {ids0.shape}"
    finite = np.isfinite(s0)
    assert np.array_equal(finite, np.isfinite(s1)), f"{name} {what}: padding differs"
    tol = 1e-5 * np.maximum(1.0, np.abs(s0))
    assert np.all(np.abs(s0[finite] - s1[finite]) <= tol[finite] * 10), (
        f"{name} {what}: scores differ by up to {np.max(np.abs(s0[finite] - s1[finite])):.3g}"
    )
    for r, c in zip(*np.nonzero(ids0 != ids1), strict=True):
        # a swapped pair of (near-)tied items is the same answer
        near = [s0[r, j] for j in (c - 1, c + 1) if 0 <= j < s0.shape[1]]
        assert any(abs(s0[r, c] - v) <= 10 * tol[r, c] for v in near), (
            f"{name} {what}: row {r} rank {c}: item {ids1[r, c]} instead of {ids0[r, c]}"
        )


@pytest.mark.parametrize("name", list(json.loads((HERE / "known_lists.json").read_text()).keys()))
def test_lists_unchanged(lists, name):
    saved, now = lists
    assert set(saved[name]) == set(now[name]), f"{name}: different queries answered"
    for what in saved[name]:
        if what == "params":
            continue
        _same_lists(name, what, saved[name][what], now[name][what])
