"""Realistic synthetic interactions for scale tests and for models that must learn something.

* item popularity follows a power law (Zipf, exponent ``popularity_exponent``) over a random
  permutation of the item ids;
* user activity is log-normal, every user has at least one interaction (when there are at
  least as many interactions as users) and at most half the catalogue;
* each user's items are drawn from the popularity distribution without replacement, so no
  (user, item) pair repeats;
* explicit ratings come from a latent-factor model ``mu + b_u + b_i + p_u . q_i + noise``,
  rounded and clipped to 1..5, so matrix factorisation has structure to find;
* timestamps increase along each user's history; rows come in global time order.

Everything is vectorised (numpy); 20 million interactions take seconds.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._config import rng as _rng
from .._config import seed_is_random_state
from ..errors import ConfigError
from ..types import RandomState
from .ids import IdMap
from .interactions import Interactions

__all__ = ["synthetic", "write_synthetic"]

_log = logging.getLogger(__name__)

_T0 = 946_684_800  # 2000-01-01
_T1 = 1_704_067_200  # 2024-01-01
_CHUNK = 1 << 20


def _user_targets(
    gen: np.random.Generator, n_users: int, n_items: int, total: int, sigma: float
) -> np.ndarray:
    """Per-user interaction counts: log-normal, summing exactly to ``total``, within [1, cap]."""
    cap = max(1, n_items // 2)
    floor = 1 if total >= n_users else 0
    w = gen.lognormal(0.0, sigma, n_users)
    counts = np.zeros(n_users, dtype=np.int64)
    remaining = total
    for _ in range(64):  # water-filling; converges in a few rounds
        free = counts < cap
        if remaining <= 0 or not free.any():
            break
        share = w * free
        add = np.floor(share / share.sum() * remaining).astype(np.int64)
        add = np.minimum(add, cap - counts)
        counts += add
        remaining = total - int(counts.sum())
        if add.sum() == 0:
            break
    if remaining > 0:  # hand out the rounding remainder one by one to users with room
        room = np.flatnonzero(counts < cap)
        pick = gen.choice(
            room, size=min(remaining, room.size), replace=False, p=w[room] / w[room].sum()
        )
        counts[pick] += 1
    if floor:
        zero = counts == 0
        if zero.any():  # move one interaction from the heaviest users to each idle one
            n_zero = int(zero.sum())
            donors = np.argsort(-counts, kind="stable")
            take = np.zeros(n_users, dtype=np.int64)
            k = 0
            while n_zero > 0 and k < 64:  # bounded: each pass takes up to 1 from n_users donors
                avail = np.clip(counts[donors] - take[donors] - 1, 0, 1)[:n_zero]
                take[donors[: avail.size]] += avail
                n_zero -= int(avail.sum())
                k += 1
            counts -= take
            counts[np.flatnonzero(zero)[: int(take.sum())]] = 1
    return counts


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort; faster here than numpy's hash-based unique)."""
    a.sort()
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: O(1) vectorised draws from a discrete distribution."""
    n = p.size
    scaled = (p / p.sum() * n).tolist()
    alias = np.arange(n, dtype=np.int64)
    small = [k for k, v in enumerate(scaled) if v < 1.0]
    large = [k for k, v in enumerate(scaled) if v >= 1.0]
    while small and large:  # bounded: every pass retires one entry
        s, big = small.pop(), large[-1]
        alias[s] = big
        scaled[big] -= 1.0 - scaled[s]
        if scaled[big] < 1.0:
            large.pop()
            small.append(big)
    for k in small + large:
        scaled[k] = 1.0
    return np.asarray(scaled), alias


def _sample_items(
    gen: np.random.Generator,
    targets: np.ndarray,
    p: np.ndarray,
    n_items: int,
    table: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items per user drawn from ``p`` without replacement.

    Rows come grouped by user, in a random order inside each user. ``table`` is ``p``'s
    alias table when the caller has built it already (chunked generation).
    """
    n_users = targets.size
    prob, alias = _alias_table(p) if table is None else table
    keys = np.empty(0, dtype=np.int64)
    have = np.zeros(n_users, dtype=np.int64)
    factor = 1.2
    for _ in range(6):  # rejection rounds: draw the deficit (with margin), deduplicate
        deficit = targets - have
        need = deficit > 0
        if not need.any():
            break
        draws = np.where(need, np.ceil(deficit * factor).astype(np.int64) + 2, 0)
        users = np.repeat(np.arange(n_users, dtype=np.int64), draws)
        j = gen.integers(0, n_items, users.size)
        items = np.where(gen.random(users.size) < prob[j], j, alias[j])
        users *= n_items
        users += items
        keys = _sorted_unique(np.concatenate((keys, users)))
        del users, items, j
        have = np.bincount(keys // n_items, minlength=n_users)
        factor *= 2.0
    short = np.flatnonzero(have < targets)
    if short.size:  # exact weighted sampling without replacement (Gumbel top-k) for the rest
        keys = keys[~np.isin(keys // n_items, short)]
        logp = np.log(np.maximum(p, 1e-300))
        rows = max(1, _CHUNK * 8 // n_items)
        extra = []
        for s in range(0, short.size, rows):
            block = short[s : s + rows]
            g = logp[None, :] - np.log(-np.log(gen.random((block.size, n_items))))
            for r, u in enumerate(block):  # bounded by the few heavy users left
                k = int(targets[u])
                top = np.argpartition(-g[r], k - 1)[:k]
                extra.append(u * n_items + top.astype(np.int64))
        keys = _sorted_unique(np.concatenate([keys, *extra]))
    # shuffle inside each user and keep the first ``target`` (trims the over-drawn users)
    u = keys // n_items
    order = np.argsort((u << 32) | gen.integers(0, 1 << 32, u.size, dtype=np.int64))
    keys, u = keys[order], u[order]
    have = np.bincount(u, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(have)[:-1]))
    keep = (np.arange(keys.size) - starts[u]) < targets[u]
    return u[keep].astype(np.int32), (keys[keep] % n_items).astype(np.int32)


@seed_is_random_state
def synthetic(
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    implicit: bool = False,
    factors: int = 8,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    noise: float = 0.5,
    random_state: RandomState = None,
) -> Interactions:
    """Generate a synthetic dataset with realistic skew and learnable ratings.

    Parameters
    ----------
    n_users, n_items
        Users (ids ``1..n_users``) and items (ids ``1..n_items``).
    n_interactions
        Exact number of (distinct) user-item pairs; at most half of ``n_users * n_items``.
    implicit
        No ratings (``ratings is None``) when True.
    factors
        Dimension of the latent factors behind the ratings.
    popularity_exponent
        Zipf exponent of item popularity (1.0 is MovieLens-like; 0 is uniform).
    activity_sigma
        Spread of the log-normal user activity.
    noise
        Standard deviation of the rating noise, before rounding.
    random_state
        None, an int seed or a ``numpy.random.Generator``; the same seed gives the same data.

    Returns
    -------
    Interactions
        ``ratings`` float32 in ``{1, 2, 3, 4, 5}`` (or None), ``timestamps`` int64 seconds,
        rows in time order, ``name="synthetic"``, ``stats["source"] = "synthetic"`` and the
        generator's ``true_*`` parameters not kept (regenerate with the seed instead).

    Examples
    --------
    >>> inter = synthetic(100, 50, 1000, random_state=0)
    >>> len(inter), bool(inter.ratings.min() >= 1), bool(inter.ratings.max() <= 5)
    (1000, True, True)
    """
    if min(n_users, n_items) < 1 or n_interactions < 0:
        raise ValueError("n_users and n_items must be >= 1 and n_interactions >= 0")
    if n_interactions > n_users * max(1, n_items // 2):
        raise ValueError(
            f"n_interactions={n_interactions:,} is more than half the {n_users:,} x {n_items:,} matrix "
            f"allows per user ({n_users * max(1, n_items // 2):,}); use fewer interactions or more items"
        )
    gen = _rng(random_state)
    pop = _popularity(gen, n_items, popularity_exponent)
    targets = _user_targets(gen, n_users, n_items, int(n_interactions), float(activity_sigma))
    users, items = _sample_items(gen, targets, pop, n_items)
    ts = _timestamps(gen, users, n_users)
    ratings = None
    if not implicit:
        latent = _latent(gen, n_users, n_items, factors, pop)
        ratings = _ratings(gen, users, items, latent, noise)

    # global time order (stable, so each user's order is kept)
    order = np.argsort(ts)  # ties only across users: a user never repeats a time
    users, items, ts = users[order], items[order], ts[order]
    if ratings is not None:
        ratings = ratings[order]
    inter = Interactions(
        users=np.ascontiguousarray(users, dtype=np.int32),
        items=np.ascontiguousarray(items, dtype=np.int32),
        ratings=ratings,
        timestamps=ts.astype(np.int64),
        user_ids=IdMap(np.arange(1, n_users + 1, dtype=np.int64), kind="user"),
        item_ids=IdMap(np.arange(1, n_items + 1, dtype=np.int64), kind="item"),
        name="synthetic",
        stats={"rows_read": int(users.size), "duplicates_dropped": 0, "source": "synthetic"},
    )
    return inter


def _popularity(gen: np.random.Generator, n_items: int, exponent: float) -> np.ndarray:
    """Zipf item weights (summing to 1) over a random permutation of the items."""
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    pop = ranks ** -float(exponent)
    pop /= pop.sum()
    return pop[np.argsort(gen.permutation(n_items))]  # item j gets the weight of rank perm[j]


def _timestamps(gen: np.random.Generator, users: np.ndarray, n_users: int) -> np.ndarray:
    """Seconds for rows grouped by user (``users`` in ``[0, n_users)``): each user starts
    somewhere in [T0, T1) and their events follow, in the (already random) row order, at
    exponential gaps spread over a per-user horizon; strictly increasing per user."""
    n = users.size
    span = _T1 - _T0
    start = gen.integers(_T0, _T1 - span // 10, size=n_users)
    horizon = (gen.uniform(0.001, 0.1, size=n_users) * span).astype(np.int64)
    per = np.bincount(users, minlength=n_users)
    first = np.concatenate(([0], np.cumsum(per)[:-1]))
    gaps = np.cumsum(gen.exponential(1.0, n))
    base = np.concatenate(([0.0], gaps))[first]  # cumulative gap before each user's block
    last = np.concatenate(([0.0], gaps))[first + per]
    total = last - base + gen.exponential(1.0, n_users)
    frac = (gaps - base[users]) / total[users]
    ts = start[users] + (frac * horizon[users]).astype(np.int64)
    return _per_user_increasing(ts, users, first)


class _Latent(NamedTuple):
    pu: np.ndarray
    qi: np.ndarray
    bu: np.ndarray
    bi: np.ndarray
    dim: int


def _latent(
    gen: np.random.Generator, n_users: int, n_items: int, factors: int, pop: np.ndarray
) -> _Latent:
    """The true factors and biases behind the ratings."""
    dim = max(1, int(factors))
    scale = 1.0 / np.sqrt(dim)
    pu = gen.normal(0.0, 0.9 * scale, (n_users, dim)).astype(np.float32)
    qi = gen.normal(0.0, 0.9 * scale, (n_items, dim)).astype(np.float32)
    bu = gen.normal(0.0, 0.35, n_users).astype(np.float32)
    bi = (
        gen.normal(0.0, 0.4, n_items) + 0.15 * (np.log(pop * n_items) / max(np.log(n_items), 1.0))
    ).astype(np.float32)
    return _Latent(pu, qi, bu, bi, dim)


def _ratings(
    gen: np.random.Generator,
    users: np.ndarray,
    items: np.ndarray,
    latent: _Latent,
    noise: float,
) -> np.ndarray:
    """``mu + b_u + b_i + p_u . q_i + noise``, rounded and clipped to 1..5 (float32)."""
    pu, qi, bu, bi, dim = latent
    n = users.size
    mu = np.float32(3.55)
    raw = np.empty(n, dtype=np.float32)
    for s in range(0, n, _CHUNK):
        u, i = users[s : s + _CHUNK], items[s : s + _CHUNK]
        raw[s : s + _CHUNK] = (
            mu + bu[u] + bi[i] + np.einsum("ij,ij->i", pu[u], qi[i]) * np.float32(dim**0.5)
        )
    raw += gen.normal(0.0, noise, n).astype(np.float32)
    return np.clip(np.rint(raw), 1, 5).astype(np.float32)


def _per_user_increasing(ts: np.ndarray, users: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Make timestamps strictly increasing within each user's (contiguous) block."""
    n = ts.size
    if n == 0:
        return ts
    rank = np.arange(n) - first[users]
    # subtract the rank, take a running max per user, add the rank back -> strictly increasing
    shifted = ts - rank
    # running max restarted at each user's first row: offset users so blocks never interact
    offset = users.astype(np.int64) * (np.int64(1) << 33)
    run = np.maximum.accumulate(shifted + offset) - offset
    return run + rank


#: rows per Parquet part written by :func:`write_synthetic` (about 0.1 GiB of working memory)
DEFAULT_CHUNK_ROWS = 4_000_000


def write_synthetic(
    path: str | os.PathLike[str],
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    implicit: bool = False,
    factors: int = 8,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    noise: float = 0.5,
    random_state: RandomState = None,
) -> Path:
    """Generate :func:`synthetic` data straight to Parquet, a block of users at a time.

    The per-user and per-item draws (activity, popularity, the latent factors behind the
    ratings) are made once; then users are taken in consecutive blocks of about
    ``chunk_rows`` interactions, each block's items, timestamps and ratings generated and
    written as one part, so memory holds one block of rows (plus per-user and per-item
    arrays), never the whole table: 100M interactions need about as much memory as 4M.

    ``path`` ending in ``.parquet`` / ``.pq`` gives one file (the parts streamed into it);
    any other path a directory of ``part-NNNNN.parquet`` files (what Spark writes and
    reads). Either appears atomically when complete. Columns: ``user_id``, ``item_id``
    (int64, from 1), ``rating`` (float32 1..5; absent when ``implicit``), ``timestamp``
    (int64 seconds). Rows are grouped by block of users and in time order inside a block.
    The same arguments (``chunk_rows`` included) and seed give the same file; the rows
    have the same distributions as :func:`synthetic`'s but are not the same draws.

    Returns the path written.
    """
    if min(n_users, n_items) < 1 or n_interactions < 0:
        raise ValueError("n_users and n_items must be >= 1 and n_interactions >= 0")
    if n_interactions > n_users * max(1, n_items // 2):
        raise ValueError(
            f"n_interactions={n_interactions:,} is more than half the {n_users:,} x {n_items:,} matrix "
            f"allows per user ({n_users * max(1, n_items // 2):,}); use fewer interactions or more items"
        )
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    import polars as pl

    from .._io import _writable_dir

    out = Path(path)
    single = out.suffix.lower() in (".parquet", ".pq")
    # the parent must be writable; a directory output may replace an earlier directory
    _writable_dir(out if single else out / "part", "the synthetic data")
    gen = _rng(random_state)
    pop = _popularity(gen, n_items, popularity_exponent)
    targets = _user_targets(gen, n_users, n_items, int(n_interactions), float(activity_sigma))
    latent = None if implicit else _latent(gen, n_users, n_items, factors, pop)
    table = _alias_table(pop)
    # consecutive user blocks of about chunk_rows rows each (a heavy user never splits)
    ends = np.cumsum(targets)
    bounds = [0]
    while bounds[-1] < n_users:
        lo = bounds[-1]
        done = int(ends[lo - 1]) if lo else 0
        hi = int(np.searchsorted(ends, done + chunk_rows, side="right"))
        bounds.append(min(n_users, max(hi, lo + 1)))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for part, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            users, items = _sample_items(gen, targets[lo:hi], pop, n_items, table)
            ts = _timestamps(gen, users, hi - lo)
            cols: dict[str, np.ndarray] = {}
            order = np.argsort(ts, kind="stable")
            cols["user_id"] = users[order].astype(np.int64) + (lo + 1)
            cols["item_id"] = items[order].astype(np.int64) + 1
            if latent is not None:
                gu = users + np.int32(lo)
                cols["rating"] = _ratings(gen, gu, items, latent, noise)[order]
                del gu
            cols["timestamp"] = ts[order]
            del users, items, ts, order
            pl.DataFrame(cols).write_parquet(tmp / f"part-{part:05d}.parquet", statistics=True)
            del cols
        if single:
            # stream the parts into one file (row groups; the parts' order kept)
            one = tmp / "all.parquet"
            pl.scan_parquet(tmp / "part-*.parquet").sink_parquet(one)
            os.replace(one, out)
        else:
            if out.is_dir():  # replace a previous directory of parts
                old = out.with_name(f".{out.name}.old-{os.getpid()}")
                os.replace(out, old)
                shutil.rmtree(old, ignore_errors=True)
            elif out.exists():
                raise ConfigError(f"{out}: exists and is not a directory (the synthetic data)")
            os.replace(tmp, out)
            tmp = None  # type: ignore[assignment]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _log.info("synthetic: %d rows in %d part(s) -> %s", n_interactions, len(bounds) - 1, out)
    return out
