"""Filters and split strategies: Interactions in, train / valid / test out.

Every strategy returns a :class:`Split` built by one rule:

* ``train`` is compacted: its IdMaps hold exactly the users and items with train rows;
* ``test`` (and ``valid``) are reindexed onto train's IdMaps with
  :meth:`Interactions.reindex`; rows whose user or item has no train row ("cold") are
  dropped and counted in ``Split.report``.

So ``test.user_ids is train.user_ids`` and the parts plus the reported drops partition the
input rows exactly. Rows keep their file order inside each part.

Chance enters only through ``random_state`` (None, an int or a ``numpy.random.Generator``,
turned into a Generator with :func:`numpy.random.default_rng`); the same seed and data give
the same split. Everything is vectorised (sorts, ``bincount``, cumulative counts per user),
so 25M rows split in seconds.

Filters (:func:`min_rating`, :func:`kcore`, :func:`min_counts`) run before a split; each
returns compacted Interactions and appends what it dropped to ``stats["filters"]``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ._config import rng, seed_is_random_state
from .data.interactions import Interactions
from .errors import ConfigError, DataError
from .kernels.grouping import group_order, sort_within_groups
from .types import RandomState

__all__ = [
    "Split",
    "SplitSpec",
    "ColdRows",
    "make_folds",
    "is_fold_family",
    "FOLD_FORMS",
    "min_rating",
    "kcore",
    "min_counts",
    "random_split",
    "user_random_split",
    "temporal_split",
    "last_k",
    "grouplens",
    "warm_temporal",
    "carve_validation",
    "parse_split",
    "make_split",
    "SPEC_FORMS",
]

_log = logging.getLogger(__name__)

SPEC_FORMS = (
    "random:0.2, user-random:0.8/0.1/0.1 (or train/test like 0.8/0.2), temporal:0.1, "
    "last:3 (by timestamp), last:3:row (by file row order), ua, ub, u1..u5, "
    "warm-temporal or warm-temporal:quantile=0.9,min_train=5,min_test=1 (or test_after=<unix time>)"
)
"""The split spec strings :func:`parse_split` accepts (quoted in its errors)."""


# --- the result ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ColdRows:
    """Test rows dropped as cold (their user or item has no train row), kept for reporting.

    ``users`` / ``items`` are train indices, ``-1`` where the user or item is unknown to
    train; a rating model can still give them its baseline estimate
    (``predict(..., missing="baseline")``), so metrics on the cold part can be reported.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass(frozen=True, eq=False)
class Split:
    """A train / test (/ valid) split of one Interactions table.

    Attributes
    ----------
    train : Interactions
        Compacted: only users and items with train rows. (After :func:`carve_validation`,
        train keeps the maps of the train it was carved from; see there.)
    test : Interactions
        On train's IdMaps; cold rows dropped and counted in ``report``.
    valid : Interactions or None
        On train's IdMaps too, when the strategy makes one.
    name : str
        The spec string (``"ua"``, ``"last:3:row"``, ...), for run records.
    cold_test : ColdRows or None
        The test rows dropped as cold, with ``-1`` for the unknown side (for warm / cold
        reports of rating models).
    report : dict
        ``input_rows``, ``train_rows``, ``test_rows``, ``valid_rows``; for each held-out part
        ``<part>_cold_users``, ``<part>_cold_items``, ``<part>_cold_user_rows``,
        ``<part>_cold_item_rows``; ``rows_dropped`` (every input row in no part) and what the
        strategy adds (thresholds, users kept whole in train, ...).
    """

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    name: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    cold_test: ColdRows | None = None

    def summary(self) -> str:
        """One line a person reads: the parts' sizes and what the split threw away.

        >>> # "ua: train 90,570 rows; test 9,428 rows, 943 users (2 rows of 2 cold items dropped)"
        """
        r = self.report
        test_rows = int(r.get("test_rows", len(self.test)))
        cold_u_rows = int(r.get("test_cold_user_rows", 0))
        cold_i_rows = int(r.get("test_cold_item_rows", 0))
        held = test_rows + cold_u_rows + cold_i_rows
        users = int(np.unique(self.test.users).size)
        text = (
            f"{self.name or 'split'}: train {len(self.train):,} rows "
            f"({self.train.n_users:,} users, {self.train.n_items:,} items); "
            f"test {test_rows:,} rows, {users:,} users"
        )
        if self.valid is not None:
            text += f"; valid {len(self.valid):,} rows"
        drops = []
        if cold_u_rows:
            drops.append(f"{cold_u_rows:,} rows of {int(r.get('test_cold_users', 0)):,} cold users")
        if cold_i_rows:
            drops.append(f"{cold_i_rows:,} rows of {int(r.get('test_cold_items', 0)):,} cold items")
        if drops:
            share = (cold_u_rows + cold_i_rows) / held if held else 0.0
            text += f" (dropped {' and '.join(drops)}: {share:.0%} of the test part)"
        return text

    @property
    def test_dropped_share(self) -> float:
        """Share of the held-out test rows dropped as cold (user or item unseen in train)."""
        r = self.report
        dropped = int(r.get("test_cold_user_rows", 0)) + int(r.get("test_cold_item_rows", 0))
        held = int(r.get("test_rows", len(self.test))) + dropped
        return dropped / held if held else 0.0

    def __repr__(self) -> str:
        parts = f"train={len(self.train):,}, test={len(self.test):,}"
        if self.valid is not None:
            parts += f", valid={len(self.valid):,}"
        return f"Split({self.name or 'unnamed'}: {parts}, dropped={self.report.get('rows_dropped', 0):,})"


_rng = rng


def _as_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _build(
    inter: Interactions,
    train_mask: np.ndarray,
    test_mask: np.ndarray,
    valid_mask: np.ndarray | None,
    name: str,
    extra: dict[str, Any] | None = None,
) -> Split:
    """Apply the split rule to three disjoint row masks (rows in none are counted as dropped)."""
    n = len(inter)
    train = inter.subset(train_mask, name=_part_name(inter, "train")).compact()
    report: dict[str, Any] = {"input_rows": n, "train_rows": len(train)}
    dropped = n - int(train_mask.sum()) - int(test_mask.sum())
    dropped -= 0 if valid_mask is None else int(valid_mask.sum())
    parts: dict[str, Interactions] = {}
    cold_test = None
    for part, mask in (("test", test_mask), ("valid", valid_mask)):
        if mask is None:
            report["valid_rows"] = 0
            continue
        raw = inter.subset(mask, name=_part_name(inter, part))
        held, cold = raw.reindex(train.user_ids, train.item_ids)
        if part == "test":
            cold_test = _cold_rows(raw, train)
        parts[part] = held
        report[f"{part}_rows"] = len(held)
        for key, value in cold.items():
            report[f"{part}_{key}"] = value
        dropped += cold["cold_user_rows"] + cold["cold_item_rows"]
    report["rows_dropped"] = dropped
    if extra:
        report.update(extra)
    _log.debug("split %s: %s", name, report)
    return Split(
        train=train,
        test=parts["test"],
        valid=parts.get("valid"),
        name=name,
        report=report,
        cold_test=cold_test,
    )


def _cold_rows(raw: Interactions, train: Interactions) -> ColdRows:
    """The rows of ``raw`` whose user or item train does not know, as train indices or -1."""
    if len(raw) == 0:
        return ColdRows(np.zeros(0, np.int32), np.zeros(0, np.int32), None)
    u = train.user_ids.lookup(raw.user_ids.ids)[raw.users]
    i = train.item_ids.lookup(raw.item_ids.ids)[raw.items]
    cold = (u < 0) | (i < 0)
    ratings = None if raw.ratings is None else raw.ratings[cold]
    return ColdRows(u[cold].astype(np.int32), i[cold].astype(np.int32), ratings)


def _part_name(inter: Interactions, part: str) -> str:
    return f"{inter.name}:{part}" if inter.name else part


def _check_fraction(value: float | str, what: str, *, allow_zero: bool = False) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number between 0 and 1, got {value!r}") from None
    low_ok = f >= 0 if allow_zero else f > 0
    if not (low_ok and f < 1) or math.isnan(f):
        bound = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{what} must be in {bound}, got {value!r}")
    return f


def _need_timestamps(inter: Interactions, what: str, hint: str = "") -> np.ndarray:
    if inter.timestamps is None:
        raise DataError(
            f"{what} needs timestamps and these interactions have none{hint}",
            file=inter.name or None,
        )
    return inter.timestamps


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def _group_ranks(
    users: np.ndarray, order: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each row inside its user's group, given ``order`` sorted by (user, key).

    ``order`` must list the rows grouped by user (ascending) in the wanted within-user order.
    Returns ``(rank, counts)``: ``rank[row]`` is the 0-based position of ``row`` within its
    user in that order, ``counts[user]`` the number of rows of each user.
    """
    counts = np.bincount(users, minlength=n_users)
    starts = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64) - starts[users[order]]
    return rank, counts


def _order_by_user(inter: Interactions, within: np.ndarray | None = None) -> np.ndarray:
    """Rows grouped by user; inside a user by ``within`` (ties by row order), or by row order."""
    if within is not None:
        return sort_within_groups(inter.users, inter.n_users, within)
    return group_order(inter.users, inter.n_users)


# --- filters ---------------------------------------------------------------------------------
def _filtered(inter: Interactions, keep: np.ndarray, record: dict[str, Any]) -> Interactions:
    out = inter.subset(keep).compact()
    record.update(
        rows_before=len(inter),
        rows_dropped=len(inter) - len(out),
        users_dropped=inter.n_users - out.n_users,
        items_dropped=inter.n_items - out.n_items,
    )
    stats = dict(inter.stats)
    stats["filters"] = [*inter.stats.get("filters", []), record]
    _log.info(
        "filter %s dropped %d of %d rows", record["filter"], record["rows_dropped"], len(inter)
    )
    return replace(out, stats=stats)


def min_rating(inter: Interactions, threshold: float) -> Interactions:
    """Keep the rows rated ``>= threshold`` (e.g. 4: ratings of 4 and 5 as positives).

    Returns compacted Interactions (users and items left without rows are gone); what was
    dropped is appended to ``stats["filters"]``.

    Raises
    ------
    DataError
        When the interactions have no ratings.
    """
    if inter.ratings is None:
        raise DataError(
            "min_rating needs explicit ratings and these interactions are implicit",
            file=inter.name or None,
        )
    keep = inter.ratings >= np.float32(threshold)
    return _filtered(inter, keep, {"filter": "min_rating", "threshold": float(threshold)})


def min_counts(inter: Interactions, min_user: int = 0, min_item: int = 0) -> Interactions:
    """One pass: keep rows whose user has ``>= min_user`` rows and item ``>= min_item`` rows.

    Counts are taken once on the input, so after the filter some users or items may fall
    below the minimum again; use :func:`kcore` for a fixed point.
    """
    min_user, min_item = _check_count(min_user, "min_user"), _check_count(min_item, "min_item")
    uc, ic = inter.user_counts(), inter.item_counts()
    keep = (uc[inter.users] >= min_user) & (ic[inter.items] >= min_item)
    return _filtered(
        inter, keep, {"filter": "min_counts", "min_user": min_user, "min_item": min_item}
    )


def kcore(inter: Interactions, user_k: int, item_k: int | None = None) -> Interactions:
    """Iterative k-core: drop users with ``< user_k`` rows and items with ``< item_k`` rows
    (``item_k`` defaults to ``user_k``) until every remaining user and item meets its minimum.

    Each round is vectorised; the number of rounds is recorded in ``stats["filters"]``.
    """
    user_k = _check_count(user_k, "user_k")
    item_k = user_k if item_k is None else _check_count(item_k, "item_k")
    keep = np.ones(len(inter), dtype=bool)
    rounds = 0
    users, items = inter.users, inter.items
    while True:
        rounds += 1
        uc = np.bincount(users[keep], minlength=inter.n_users)
        ic = np.bincount(items[keep], minlength=inter.n_items)
        new_keep = keep & (uc[users] >= user_k) & (ic[items] >= item_k)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return _filtered(
        inter, keep, {"filter": "kcore", "user_k": user_k, "item_k": item_k, "rounds": rounds}
    )


def _check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


# --- strategies ------------------------------------------------------------------------------
def random_split(inter: Interactions, test: float = 0.2, random_state: RandomState = None) -> Split:
    """Global holdout: ``round(test * n)`` rows drawn uniformly without replacement go to test."""
    frac = _check_fraction(test, "test")
    rng = _rng(random_state)
    n = len(inter)
    n_test = int(_round_half_up(np.array(frac * n)))
    test_mask = _as_mask(n, rng.permutation(n)[:n_test])
    return _build(inter, ~test_mask, test_mask, None, f"random:{_fmt(frac)}")


def user_random_split(
    inter: Interactions,
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1),
    random_state: RandomState = None,
) -> Split:
    """Split each user's rows at random into train / valid / test.

    ``fractions`` is ``(train, valid, test)`` or ``(train, test)`` and must sum to 1. For a
    user with ``n`` rows, test gets ``round(n * test)`` and valid ``round(n * valid)`` rows
    (halves rounded up), train the rest; when that would leave train empty, valid and then
    test give rows back, so every user keeps at least one train row. ``valid`` is None for two
    fractions (or a zero valid fraction).
    """
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        fr = ()
    if (
        len(fr) not in (2, 3)
        or any(not (0 <= f <= 1) for f in fr)
        or abs(sum(fr) - 1) > 1e-6
        or fr[0] <= 0
    ):
        raise ConfigError(
            "fractions must be (train, valid, test) or (train, test), each in [0, 1], summing to 1 "
            f"with a positive train share; got {fractions!r}"
        )
    f_valid, f_test = (0.0, fr[1]) if len(fr) == 2 else (fr[1], fr[2])
    valid_mask, test_mask = _user_random_masks(inter, f_valid, f_test, _rng(random_state))
    train_mask = ~(valid_mask | test_mask)
    name = "user-random:" + "/".join(_fmt(f) for f in fr)
    return _build(inter, train_mask, test_mask, valid_mask if f_valid > 0 else None, name)


def _user_random_masks(
    inter: Interactions, f_valid: float, f_test: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(valid, test) row masks of a per-user random split; every user keeps one train row."""
    perm = rng.permutation(len(inter))
    order = perm[group_order(inter.users[perm], inter.n_users)]
    rank, counts = _group_ranks(inter.users, order, inter.n_users)
    n_test = _round_half_up(counts * f_test)
    n_valid = _round_half_up(counts * f_valid)
    over = np.maximum(n_test + n_valid - (counts - 1), 0) * (counts > 0)
    give_valid = np.minimum(over, n_valid)
    n_valid -= give_valid
    n_test -= over - give_valid
    u = inter.users
    # within a user: ranks [0, n_test) test, [n_test, n_test + n_valid) valid, the rest train
    test_mask = rank < n_test[u]
    valid_mask = ~test_mask & (rank < (n_test + n_valid)[u])
    return valid_mask, test_mask


def temporal_split(inter: Interactions, test: float = 0.1) -> Split:
    """Global time split: the latest ``round(test * n)`` rows by timestamp go to test.

    Rows with equal timestamps are ordered by row order, later rows counting as later, so
    the largest train timestamp is never above the smallest test timestamp.
    """
    frac = _check_fraction(test, "test")
    ts = _need_timestamps(inter, "temporal split")
    n = len(inter)
    n_test = int(_round_half_up(np.array(frac * n)))
    test_mask = np.zeros(n, dtype=bool)
    if n_test:
        # O(n): the n_test-th largest timestamp, then ties at it filled from the last rows
        cut = ts[np.argpartition(ts, n - n_test)[n - n_test]]
        test_mask = ts > cut
        ties = np.flatnonzero(ts == cut)
        test_mask[ties[ties.size - (n_test - int(test_mask.sum())) :]] = True
    return _build(inter, ~test_mask, test_mask, None, f"temporal:{_fmt(frac)}")


def last_k(inter: Interactions, k: int = 1, by: Literal["timestamp", "row"] = "timestamp") -> Split:
    """Leave-last-k per user: each user's last ``k`` rows go to test.

    ``by="timestamp"`` orders a user's rows by timestamp (ties by row order);
    ``by="row"`` by the file's row order (a common notebook protocol on ml-100k, whose
    ``u.data`` rows are in random order). Users with ``<= k`` rows keep all of them in train;
    their number is ``report["users_kept_in_train"]``.
    """
    k = _check_count(k, "k")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if by not in ("timestamp", "row"):
        raise ConfigError(f"by must be 'timestamp' or 'row', got {by!r}")
    test_mask, kept = _last_k_mask(inter, k, by)
    name = f"last:{k}" + (":row" if by == "row" else "")
    return _build(
        inter, ~test_mask, test_mask, None, name, {"k": k, "by": by, "users_kept_in_train": kept}
    )


def _last_k_mask(inter: Interactions, k: int, by: str) -> tuple[np.ndarray, int]:
    """Mask of each user's last ``k`` rows (users with ``<= k`` rows: none) and their count."""
    within = None
    if by == "timestamp":
        within = _need_timestamps(
            inter, "last-k by timestamp", hint=f"; use last:{k}:row for file order"
        )
    order = _order_by_user(inter, within)
    rank, counts = _group_ranks(inter.users, order, inter.n_users)
    n_u = counts[inter.users]
    test_mask = (n_u - 1 - rank < k) & (n_u > k)
    kept = int(((counts > 0) & (counts <= k)).sum())
    return test_mask, kept


_ML100K = {"rows": 100_000, "users": 943, "items": 1682}


def grouplens(inter: Interactions, name: str) -> Split:
    """The GroupLens ml-100k splits, made from ``u.data``'s row order as ``mku.sh`` does.

    * ``u1``..``u5``: ``u{i}.test`` is rows ``(i-1)*20000 .. i*20000-1`` of ``u.data``,
      ``u{i}.base`` the other 80,000 (five disjoint folds).
    * ``ua``: each user's first 10 ratings in file order are the test set
      (``allbut.pl ua 1 10``); ``ub``: each user's 11th..20th (``allbut.pl ub 11 20``).

    The GroupLens files are sorted by user and item; here rows stay in file order, which
    does not change their contents. ``inter`` must hold the rows in ``u.data`` order with no
    filter applied. ``ua`` / ``ub`` apply to any data (ml-1m ships the same scheme); a user
    with fewer than 10 (``ua``) ratings would lose them all to test and be dropped as cold.

    Raises
    ------
    DataError
        For ``u1``..``u5`` when the data is not 100,000 rows by 943 users on 1682 items.
    ConfigError
        For an unknown name.
    """
    key = str(name).strip().lower()
    n = len(inter)
    if key in ("ua", "ub"):
        lo, hi = (0, 10) if key == "ua" else (10, 20)
        rank, _ = _group_ranks(inter.users, _order_by_user(inter), inter.n_users)
        test_mask = (rank >= lo) & (rank < hi)
        return _build(
            inter, ~test_mask, test_mask, None, key, {"protocol": f"allbut.pl {key} {lo + 1} {hi}"}
        )
    m = re.fullmatch(r"u([1-5])", key)
    if m is None:
        raise ConfigError(f"unknown GroupLens split {name!r}; expected ua, ub or u1..u5")
    shape = {"rows": n, "users": inter.n_users, "items": inter.n_items}
    if shape != _ML100K:
        raise DataError(
            f"split {key} reproduces the ml-100k files and needs u.data itself in file order "
            f"(100,000 rows, 943 users, 1682 items, no filters); got {n:,} rows, "
            f"{inter.n_users:,} users, {inter.n_items:,} items",
            file=inter.name or None,
        )
    fold = int(m.group(1))
    test_mask = np.zeros(n, dtype=bool)
    test_mask[(fold - 1) * 20_000 : fold * 20_000] = True
    return _build(inter, ~test_mask, test_mask, None, key, {"protocol": f"mku.sh fold {fold}"})


def warm_temporal(
    inter: Interactions,
    *,
    test_after: int | None = None,
    quantile: float = 0.9,
    min_train: int = 5,
    min_test: int = 1,
) -> Split:
    """Time threshold, then test only warm users on items seen in train.

    Rows with timestamp ``> test_after`` are test candidates, the rest train. Without
    ``test_after`` the threshold is the ``quantile`` of the timestamps (the lower value when it
    falls between two), so about ``1 - quantile`` of the rows are after it.

    Train keeps every row before the threshold (none of them leaks the future). Test keeps
    the rows of users with ``>= min_train`` train rows and, after rows on items unseen in
    train are dropped, ``>= min_test`` test rows. The report gives the threshold and each
    drop, in the order applied: ``test_cold_users`` / ``test_cold_user_rows`` (users with no
    train row), ``test_cold_items`` / ``test_cold_item_rows`` (items unseen in train),
    ``test_few_train_users`` / ``_rows`` and ``test_few_test_users`` / ``_rows``; all of them
    are in ``rows_dropped``.
    """
    min_train, min_test = _check_count(min_train, "min_train"), _check_count(min_test, "min_test")
    ts = _need_timestamps(inter, "warm-temporal split")
    if test_after is None:
        q = _check_fraction(quantile, "quantile")
        if len(inter) == 0:
            raise DataError("warm-temporal split of empty interactions", file=inter.name or None)
        threshold = int(np.quantile(ts, q, method="lower"))
    else:
        threshold = int(test_after)
    after = ts > threshold
    train_mask = ~after
    u, i = inter.users, inter.items
    train_count = np.bincount(u[train_mask], minlength=inter.n_users)
    train_items = np.bincount(i[train_mask], minlength=inter.n_items) > 0
    # drops in order: cold users, cold items, users with too few train rows, too few test rows
    cold_user_rows = after & (train_count[u] == 0)
    cold_item_rows = after & ~cold_user_rows & ~train_items[i]
    cand = after & ~cold_user_rows & ~cold_item_rows
    few_train_rows = cand & (train_count[u] < min_train)
    cand &= ~few_train_rows
    test_count = np.bincount(u[cand], minlength=inter.n_users)
    few_test_user = (test_count > 0) & (test_count < min_test)
    few_test_rows = cand & few_test_user[u]
    test_mask = cand & ~few_test_rows
    extra = {
        "threshold": threshold,
        "quantile": None if test_after is not None else float(quantile),
        "min_train": min_train,
        "min_test": min_test,
        "after_threshold_rows": int(after.sum()),
        "test_cold_users": int(np.unique(u[cold_user_rows]).size),
        "test_cold_items": int(np.unique(i[cold_item_rows]).size),
        "test_cold_user_rows": int(cold_user_rows.sum()),
        "test_cold_item_rows": int(cold_item_rows.sum()),
        "test_few_train_users": int(np.unique(u[few_train_rows]).size),
        "test_few_train_rows": int(few_train_rows.sum()),
        "test_few_test_users": int(few_test_user.sum()),
        "test_few_test_rows": int(few_test_rows.sum()),
    }
    if test_after is not None:
        name = f"warm-temporal:test_after={threshold},min_train={min_train},min_test={min_test}"
    else:
        name = f"warm-temporal:quantile={_fmt(float(quantile))},min_train={min_train},min_test={min_test}"
    # rows in neither mask are counted as dropped by _build; its own cold counts are 0 here
    # because every test row has a train user and a train item, so ``extra`` replaces them
    return _build(inter, train_mask, test_mask, None, name, extra)


def carve_validation(
    split_or_train: Split | Interactions,
    strategy: Literal["user-random", "random", "last", "temporal"] = "user-random",
    fraction: float | int | None = None,
    random_state: RandomState = None,
    by: Literal["timestamp", "row"] | None = None,
) -> Split:
    """Carve a validation set out of a split's train part (or out of a bare train table).

    ``strategy``: ``"user-random"`` takes ``fraction`` (default 0.1) of each user's train rows
    (users keep at least one), ``"random"`` a global ``fraction`` of train rows, ``"last"`` each
    user's last ``k = fraction`` (default 1) rows by timestamp (by row order without
    timestamps, or with ``by="row"``; users with ``<= k`` rows give none), ``"temporal"`` the
    latest ``fraction`` (default 0.1) of train rows by timestamp (ties by row order).
    :func:`lensrec.models._validation.validation_rule` picks the one that mirrors a split.

    IdMaps: the new train keeps the IdMaps of the train it came from (it is *not*
    re-compacted), so ``test`` is returned unchanged and ``train``, ``valid`` and ``test``
    share one pair of maps. A user or item that lost all its rows to valid keeps its index
    with no train rows; valid rows on such users or items are dropped as cold and counted
    (``valid_cold_*``, and in ``rows_dropped``). With a bare Interactions, ``test`` is empty.

    Raises
    ------
    ConfigError
        If the split already has a validation set, or for a bad strategy or fraction.
    """
    if isinstance(split_or_train, Split):
        base = split_or_train
        if base.valid is not None:
            raise ConfigError(f"split {base.name or ''!r} already has a validation set")
        train, test, report, name = base.train, base.test, dict(base.report), base.name
    elif isinstance(split_or_train, Interactions):
        train = split_or_train
        test = train.subset(np.zeros(len(train), dtype=bool), name=_part_name(train, "test"))
        report, name = (
            {"input_rows": len(train), "train_rows": len(train), "test_rows": 0, "rows_dropped": 0},
            "",
        )
    else:
        raise ConfigError(
            f"carve_validation takes a Split or Interactions, got {type(split_or_train).__name__}"
        )
    if strategy in ("user-random", "random"):
        f = 0.1 if fraction is None else _check_fraction(fraction, "fraction")
        rng = _rng(random_state)
        if strategy == "user-random":
            valid_mask, _ = _user_random_masks(train, f, 0.0, rng)
        else:
            n_valid = int(_round_half_up(np.array(f * len(train))))
            valid_mask = _as_mask(len(train), rng.permutation(len(train))[:n_valid])
        carve_name = f"{strategy}:{_fmt(f)}"
    elif strategy == "last":
        k = 1 if fraction is None else fraction
        if isinstance(k, bool) or not float(k).is_integer() or k < 1:
            raise ConfigError(
                f"for strategy 'last', fraction is the number of rows per user (an int >= 1), got {fraction!r}"
            )
        k = int(k)
        if by not in (None, "timestamp", "row"):
            raise ConfigError(f"by must be 'timestamp' or 'row', got {by!r}")
        order_by = by or ("timestamp" if train.timestamps is not None else "row")
        valid_mask, _ = _last_k_mask(train, k, order_by)
        carve_name = f"last:{k}" + (":row" if order_by == "row" else "")
    elif strategy == "temporal":
        f = 0.1 if fraction is None else _check_fraction(fraction, "fraction")
        ts = _need_timestamps(train, "a temporal validation carve", hint="; use 'random'")
        n_valid = int(_round_half_up(np.array(f * len(train))))
        latest = np.argsort(-ts, kind="stable")[:n_valid]
        valid_mask = _as_mask(len(train), latest)
        carve_name = f"temporal:{_fmt(f)}"
    else:
        raise ConfigError(
            f"strategy must be 'user-random', 'random', 'last' or 'temporal', got {strategy!r}"
        )

    new_train = train.subset(~valid_mask)
    valid_name = (
        train.name[: -len(":train")] + ":valid"
        if train.name.endswith(":train")
        else _part_name(train, "valid")
    )
    valid_raw = train.subset(valid_mask, name=valid_name)
    has_u = np.bincount(new_train.users, minlength=train.n_users) > 0
    has_i = np.bincount(new_train.items, minlength=train.n_items) > 0
    cold_u = ~has_u[valid_raw.users]
    cold_i = ~has_i[valid_raw.items]
    valid = valid_raw.subset(~(cold_u | cold_i))
    report.update(
        train_rows=len(new_train),
        valid_rows=len(valid),
        valid_cold_users=int(np.unique(valid_raw.users[cold_u]).size),
        valid_cold_items=int(np.unique(valid_raw.items[cold_i]).size),
        valid_cold_user_rows=int(cold_u.sum()),
        valid_cold_item_rows=int((cold_i & ~cold_u).sum()),
        valid_strategy=carve_name,
    )
    report["rows_dropped"] = report.get("rows_dropped", 0) + int((cold_u | cold_i).sum())
    return Split(train=new_train, test=test, valid=valid, name=name, report=report)


# --- spec strings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSpec:
    """A parsed split spec: the strategy name and its keyword arguments."""

    strategy: str
    params: dict[str, Any]
    spec: str

    @property
    def uses_random_state(self) -> bool:
        return self.strategy in ("random", "user-random")


_NUM = r"(\d+(?:\.\d*)?|\.\d+)"


def _bad(spec: str, why: str = "") -> ConfigError:
    extra = f" ({why})" if why else ""
    return ConfigError(
        f"bad split spec {spec!r}{extra}; accepted forms: {SPEC_FORMS}; and where a whole run "
        "is made (evaluate, benchmark, run_spec): cv:5 or cv:u (cross-validation, every fold "
        "evaluated); `lensrec train --split none` trains on all of the data"
    )


def parse_split(spec: str) -> SplitSpec:
    """Parse a command-line split spec (see :data:`SPEC_FORMS`).

    Raises
    ------
    ConfigError
        Naming the spec and the accepted forms.
    """
    if not isinstance(spec, str):
        raise _bad(repr(spec), "not a string")
    s = spec.strip().lower()
    if s in ("ua", "ub") or re.fullmatch(r"u[1-5]", s):
        return SplitSpec("grouplens", {"name": s}, s)
    head, _, rest = s.partition(":")
    try:
        if head == "random":
            f = _check_fraction(rest or "0.2", "test fraction")
            return SplitSpec("random", {"test": f}, spec)
        if head == "temporal":
            f = _check_fraction(rest or "0.1", "test fraction")
            return SplitSpec("temporal", {"test": f}, spec)
        if head == "user-random":
            parts = (rest or "0.8/0.1/0.1").split("/")
            if len(parts) not in (2, 3) or not all(re.fullmatch(_NUM, p) for p in parts):
                raise _bad(spec, "user-random takes 2 or 3 fractions separated by '/'")
            fr = tuple(float(p) for p in parts)
            if abs(sum(fr) - 1) > 1e-6 or fr[0] <= 0:
                raise _bad(
                    spec,
                    f"fractions must sum to 1 with a positive train share, got sum {sum(fr):g}",
                )
            return SplitSpec("user-random", {"fractions": fr}, spec)
        if head == "last":
            m = re.fullmatch(r"(\d+)(?::(row|timestamp|time))?", rest or "1")
            if m is None or int(m.group(1)) < 1:
                raise _bad(spec, "last takes a positive count, optionally :row")
            by = "row" if m.group(2) == "row" else "timestamp"
            return SplitSpec("last", {"k": int(m.group(1)), "by": by}, spec)
        if head == "warm-temporal":
            params: dict[str, Any] = {}
            for item in filter(None, (p.strip() for p in rest.split(","))):
                key, eq, value = item.partition("=")
                key = key.strip()
                if not eq or key not in ("quantile", "min_train", "min_test", "test_after"):
                    raise _bad(
                        spec,
                        f"unknown option {item!r}; options are quantile, min_train, min_test, test_after",
                    )
                if key == "quantile":
                    params[key] = _check_fraction(value, "quantile")
                else:
                    if not re.fullmatch(r"-?\d+", value.strip()):
                        raise _bad(spec, f"{key} must be an integer, got {value!r}")
                    params[key] = int(value)
            if "quantile" in params and "test_after" in params:
                raise _bad(spec, "give quantile or test_after, not both")
            for key in ("min_train", "min_test"):
                if params.get(key, 0) < 0:
                    raise _bad(spec, f"{key} must be >= 0")
            return SplitSpec("warm-temporal", params, spec)
    except ConfigError as exc:
        if "accepted forms" in str(exc):
            raise
        raise _bad(spec, str(exc)) from None
    raise _bad(spec)


FOLD_FORMS = (
    "cv:5 (random k-fold over the rows, seeded), cv:u (the GroupLens u1..u5 folds of ml-100k)"
)
"""The fold-family specs :func:`make_folds` accepts."""


def is_fold_family(spec: str) -> bool:
    """True for a cross-validation spec (``cv:5``, ``cv:u``) rather than one split."""
    return isinstance(spec, str) and spec.strip().lower().startswith("cv:")


@seed_is_random_state
def make_folds(inter: Interactions, spec: str, random_state: RandomState = None) -> list[Split]:
    """The splits of a cross-validation family, one per fold.

    ``cv:K`` shuffles the rows (seeded by ``random_state``) and makes ``K`` folds of nearly
    equal size: fold ``f`` tests on its rows and trains on the others. ``cv:u`` gives the
    GroupLens ml-100k folds ``u1``..``u5`` (disjoint test parts of 20,000 rows in ``u.data``
    order). Test rows whose user or item has no train row are dropped as cold and counted,
    as in every split.

    Raises
    ------
    ConfigError
        For a spec that is not a fold family, or K outside 2..100.
    """
    s = spec.strip().lower() if isinstance(spec, str) else ""
    if not s.startswith("cv:"):
        raise ConfigError(f"bad cross-validation spec {spec!r}; accepted forms: {FOLD_FORMS}")
    rest = s[3:]
    if rest in ("u", "grouplens", "u1-u5"):
        return [
            replace(grouplens(inter, f"u{f}"), name=f"{spec.strip()} fold {f}/5")
            for f in range(1, 6)
        ]
    if not re.fullmatch(r"\d+", rest) or not 2 <= int(rest) <= 100:
        raise ConfigError(
            f"bad cross-validation spec {spec!r} (K must be an integer from 2 to 100); "
            f"accepted forms: {FOLD_FORMS}"
        )
    k = int(rest)
    if len(inter) < k:
        raise ConfigError(f"{spec}: {len(inter)} rows cannot make {k} folds")
    order = _rng(random_state).permutation(len(inter))
    bounds = np.linspace(0, len(inter), k + 1).round().astype(np.int64)
    folds = []
    for f in range(k):
        test_mask = np.zeros(len(inter), dtype=bool)
        test_mask[order[bounds[f] : bounds[f + 1]]] = True
        folds.append(
            _build(
                inter,
                ~test_mask,
                test_mask,
                None,
                f"{spec.strip()} fold {f + 1}/{k}",
                {"fold": f + 1, "folds": k},
            )
        )
    return folds


@seed_is_random_state
def make_split(
    inter: Interactions,
    spec: str | SplitSpec,
    random_state: RandomState = None,
    valid: float | str | None = None,
) -> Split:
    """Split ``inter`` by a spec string such as ``"ua"`` or ``"last:3:row"``.

    ``random_state`` seeds the strategies that draw at random (``random``, ``user-random``)
    and a random validation carve. ``valid`` optionally carves a validation set from train:
    a fraction (per-user random), or ``"user-random:0.1"``, ``"random:0.1"``, ``"last:1"``.
    """
    if isinstance(spec, str) and is_fold_family(spec):
        raise ConfigError(
            f"{spec!r} is a cross-validation family, not one split: use make_folds "
            "(the CLI and run_spec evaluate every fold and report the mean)"
        )
    ps = spec if isinstance(spec, SplitSpec) else parse_split(spec)
    p = ps.params
    if ps.strategy == "grouplens":
        sp = grouplens(inter, p["name"])
    elif ps.strategy == "random":
        sp = random_split(inter, p["test"], random_state=random_state)
    elif ps.strategy == "user-random":
        sp = user_random_split(inter, p["fractions"], random_state=random_state)
    elif ps.strategy == "temporal":
        sp = temporal_split(inter, p["test"])
    elif ps.strategy == "last":
        sp = last_k(inter, p["k"], by=p["by"])
    elif ps.strategy == "warm-temporal":
        sp = warm_temporal(inter, **p)
    else:  # pragma: no cover - parse_split only makes the above
        raise _bad(ps.spec)
    sp = replace(sp, name=ps.spec.strip() if isinstance(spec, str) else ps.spec)
    if valid is None:
        return sp
    if isinstance(valid, (float, int)) and not isinstance(valid, bool):
        return carve_validation(sp, "user-random", float(valid), random_state=random_state)
    if isinstance(valid, str):
        head, _, rest = valid.strip().lower().partition(":")
        if head in ("user-random", "random") and (rest == "" or re.fullmatch(_NUM, rest)):
            how: Literal["user-random", "random"] = "random" if head == "random" else "user-random"
            return carve_validation(
                sp, how, float(rest) if rest else None, random_state=random_state
            )
        if head == "last" and (rest == "" or rest.isdigit()):
            return carve_validation(sp, "last", int(rest) if rest else None)
    raise ConfigError(
        f"bad validation spec {valid!r}; accepted: a fraction, user-random:0.1, random:0.1, last:1"
    )


def _fmt(x: float) -> str:
    return f"{x:g}"
