"""Item-based k-NN on baseline residuals with the shrunk Pearson-baseline similarity.

Koren (2010, "Factor in the neighbors: scalable and accurate collaborative filtering",
TKDD 4(1), sections 2.2 and 3) predicts, with baselines ``b_ui = mu + b_u + b_i``,

    r_hat_ui = b_ui + sum_{j in N_k(i; u)} s_ij (r_uj - b_uj) / sum_{j in N_k(i; u)} s_ij

where ``N_k(i; u)`` holds the ``k`` items rated by ``u`` most similar to ``i``. Semantics are
Surprise's ``KNNBaseline`` with ``sim_options={"name": "pearson_baseline", "user_based":
False}``: of the ``k`` most similar items the user rated, only those with ``s_ij > 0`` count;
with fewer than ``min_k`` of them the prediction is the baseline. The similarity (Surprise's
``pearson_baseline``) is, over the users ``U_ij`` who rated both items and with residuals
``d_ui = r_ui - b_ui``,

    rho_ij = sum_{U_ij} d_ui d_uj / sqrt(sum_{U_ij} d_ui^2 * sum_{U_ij} d_uj^2)
    s_ij = (|U_ij| - 1) / (|U_ij| - 1 + shrinkage) * rho_ij

set to 0 when ``|U_ij| < max(2, min_support)`` (and, unlike Surprise, when the denominator is
0), with ``s_ii = 1`` in the dense form.

The similarity is computed sparse: item ``i``'s row comes from walking its raters' rows
(items -> users -> items), O(sum_u |I(u)|^2) in all, with a per-block workspace of a few
arrays of ``n_items``; no users x items matrix is formed. Two outputs:

* :func:`pearson_baseline_dense` fills an ``[n_items, n_items]`` matrix (exact Surprise
  semantics; fine up to ~20k items);
* :func:`pearson_baseline_topk` keeps each item's ``n_neighbors`` most similar items with
  ``s_ij > 0`` (best first; ties to the lower index), an ``[n_items, n_neighbors]`` padded
  layout. Predictions from it equal the dense ones whenever the ``k`` neighbours a prediction
  uses are among the kept ones (always when ``n_neighbors >= n_items - 1``).

Row sums run over users in CSR order; with sorted CSR rows the matrix is exactly symmetric and
the result does not depend on the thread count.
"""

from __future__ import annotations

import heapq
import math

import numba as nb
import numpy as np

__all__ = [
    "pearson_baseline_dense",
    "pearson_baseline_topk",
    "predict_pairs_dense",
    "predict_pairs_topk",
    "score_rows_dense",
    "score_rows_topk",
    "_reference_pearson_baseline",
    "_reference_predict_pairs",
    "_reference_topk",
]


@nb.njit(cache=True, nogil=True)
def _row_stats(
    i, item_indptr, item_users, item_ratings, user_indptr, user_items, user_ratings,
    mu, user_bias, item_bias, freq, prods, sq_i, sq_j, touched,
):  # fmt: skip
    # accumulate the co-rating statistics of item i against every item; returns n touched
    n_touched = 0
    for p in range(item_indptr[i], item_indptr[i + 1]):
        u = item_users[p]
        base_u = mu + user_bias[u]
        d_ui = item_ratings[p] - (base_u + item_bias[i])
        for q in range(user_indptr[u], user_indptr[u + 1]):
            j = user_items[q]
            d_uj = user_ratings[q] - (base_u + item_bias[j])
            if freq[j] == 0:
                touched[n_touched] = j
                n_touched += 1
            freq[j] += 1
            prods[j] += d_ui * d_uj
            sq_i[j] += d_ui * d_ui
            sq_j[j] += d_uj * d_uj
    return n_touched


@nb.njit(cache=True, nogil=True, inline="always")
def _similarity(freq, prod, sq_i, sq_j, shrinkage, min_support):
    if freq < min_support:
        return 0.0
    den = math.sqrt(sq_i * sq_j)
    if den == 0.0:
        return 0.0
    return prod / den * ((freq - 1) / (freq - 1 + shrinkage))


@nb.njit(cache=True, nogil=True, inline="always")
def _worse(s_a, t_a, s_b, t_b):
    # entry a ranks below entry b: lower similarity, or equal and a later tie-break key
    return s_a < s_b or (s_a == s_b and t_a > t_b)


@nb.njit(cache=True, nogil=True)
def _sift_down(h_sim, h_key, h_val, size, pos):
    # restore the heap below ``pos`` (min-heap on (sim, -key): the root is the worst entry)
    s, key, val = h_sim[pos], h_key[pos], h_val[pos]
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and _worse(h_sim[c + 1], h_key[c + 1], h_sim[c], h_key[c]):
            c += 1
        if not _worse(h_sim[c], h_key[c], s, key):
            break
        h_sim[pos], h_key[pos], h_val[pos] = h_sim[c], h_key[c], h_val[c]
        pos = c
    h_sim[pos], h_key[pos], h_val[pos] = s, key, val


@nb.njit(cache=True, nogil=True)
def _heap_push(h_sim, h_key, h_val, size, cap, s, key, val):
    # keep the ``cap`` best (sim desc, key asc) entries seen; returns the new size
    if size < cap:
        pos = size
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(s, key, h_sim[parent], h_key[parent]):
                break
            h_sim[pos], h_key[pos], h_val[pos] = h_sim[parent], h_key[parent], h_val[parent]
            pos = parent
        h_sim[pos], h_key[pos], h_val[pos] = s, key, val
        return size + 1
    if cap > 0 and _worse(h_sim[0], h_key[0], s, key):
        h_sim[0], h_key[0], h_val[0] = s, key, val
        _sift_down(h_sim, h_key, h_val, size, 0)
    return size


@nb.njit(cache=True, nogil=True, inline="always")
def _push_last_key(h_sim, h_key, h_val, size, s, key, val):
    # _heap_push into a heap that is not full, of an entry whose key is above every key it
    # holds: _worse(new, parent) reduces to ``s <= parent's similarity``; same moves
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if s > h_sim[parent]:
            break
        h_sim[pos], h_key[pos], h_val[pos] = h_sim[parent], h_key[parent], h_val[parent]
        pos = parent
    h_sim[pos], h_key[pos], h_val[pos] = s, key, val
    return size + 1


@nb.njit(cache=True, nogil=True, parallel=True)
def pearson_baseline_dense(
    item_indptr, item_users, item_ratings, user_indptr, user_items, user_ratings,
    mu, user_bias, item_bias, shrinkage, min_support, n_blocks, out,
):  # fmt: skip
    """Fill ``out`` [n_items, n_items] with the shrunk Pearson-baseline similarity.

    Parameters
    ----------
    item_indptr, item_users, item_ratings : int64 [n_items + 1], int32 [n], float32 [n]
        The ratings as an items x users CSR matrix (rows sorted by user).
    user_indptr, user_items, user_ratings : int64 [n_users + 1], int32 [n], float32 [n]
        The same ratings as a users x items CSR matrix.
    mu : float
    user_bias, item_bias : float [n_users], [n_items]
        The baselines ``b_ui = mu + b_u + b_i`` (e.g. from
        :func:`lensrec.kernels.baseline.als_biases`).
    shrinkage : float
        Surprise's default is 100.
    min_support : int
        Pairs with fewer common raters get 0 (raised to 2, as Surprise does).
    n_blocks : int
        Work units (each holds a workspace of ``n_items`` counts and sums and takes every
        ``n_blocks``-th row); a few per thread. Does not change the result.
    out : float32 or float64 [n_items, n_items]
    """
    n_items = item_indptr.shape[0] - 1
    support = max(2, min_support)
    for b in nb.prange(n_blocks):
        freq = np.zeros(n_items, dtype=np.int64)
        prods = np.zeros(n_items)
        sq_i = np.zeros(n_items)
        sq_j = np.zeros(n_items)
        touched = np.empty(n_items, dtype=np.int64)
        for i in range(b, n_items, n_blocks):
            out[i, :] = 0.0
            n_t = _row_stats(
                i, item_indptr, item_users, item_ratings, user_indptr, user_items,
                user_ratings, mu, user_bias, item_bias, freq, prods, sq_i, sq_j, touched,
            )  # fmt: skip
            for t in range(n_t):
                j = touched[t]
                out[i, j] = _similarity(freq[j], prods[j], sq_i[j], sq_j[j], shrinkage, support)
                freq[j] = 0
                prods[j] = 0.0
                sq_i[j] = 0.0
                sq_j[j] = 0.0
            out[i, i] = 1.0


@nb.njit(cache=True, nogil=True, parallel=True)
def pearson_baseline_topk(
    item_indptr, item_users, item_ratings, user_indptr, user_items, user_ratings,
    mu, user_bias, item_bias, shrinkage, min_support, n_blocks, out_items, out_sims,
):  # fmt: skip
    """Keep each item's most similar items (``s_ij > 0``, ``j != i``), best first.

    Parameters as :func:`pearson_baseline_dense`, the output being
    ``out_items`` int32 [n_items, n_neighbors] (padded with -1) and ``out_sims`` float32 or
    float64 [n_items, n_neighbors] (padded with 0), sorted by similarity, then item index.
    """
    n_items = item_indptr.shape[0] - 1
    cap = out_items.shape[1]
    support = max(2, min_support)
    for b in nb.prange(n_blocks):
        freq = np.zeros(n_items, dtype=np.int64)
        prods = np.zeros(n_items)
        sq_i = np.zeros(n_items)
        sq_j = np.zeros(n_items)
        touched = np.empty(n_items, dtype=np.int64)
        h_sim = np.empty(cap)
        h_key = np.empty(cap, dtype=np.int64)
        h_val = np.empty(cap)
        for i in range(b, n_items, n_blocks):
            n_t = _row_stats(
                i, item_indptr, item_users, item_ratings, user_indptr, user_items,
                user_ratings, mu, user_bias, item_bias, freq, prods, sq_i, sq_j, touched,
            )  # fmt: skip
            size = 0
            for t in range(n_t):
                j = touched[t]
                s = _similarity(freq[j], prods[j], sq_i[j], sq_j[j], shrinkage, support)
                if s > 0.0 and j != i and cap > 0:
                    size = _heap_push(h_sim, h_key, h_val, size, cap, s, j, 0.0)
                freq[j] = 0
                prods[j] = 0.0
                sq_i[j] = 0.0
                sq_j[j] = 0.0
            for c in range(size, cap):
                out_items[i, c] = -1
                out_sims[i, c] = 0.0
            # heap sort: pop the worst entry into the last free slot, best ends first
            for last in range(size - 1, -1, -1):
                out_items[i, last] = h_key[0]
                out_sims[i, last] = h_sim[0]
                h_sim[0], h_key[0], h_val[0] = h_sim[last], h_key[last], h_val[last]
                _sift_down(h_sim, h_key, h_val, last, 0)


_PAIR_BLOCK = 256


@nb.njit(cache=True, nogil=True, parallel=True)
def predict_pairs_dense(
    users, items, mu, user_bias, item_bias, user_indptr, user_items, user_ratings,
    sim, k, min_k, out, out_k,
):  # fmt: skip
    """Predict each (user, item) pair from the dense similarity, Surprise's way.

    Parameters
    ----------
    users, items : int32 [n]
        Known users and items (the caller handles unknown ones).
    mu, user_bias, item_bias
        The baselines.
    user_indptr, user_items, user_ratings : int64 [n_users + 1], int32 [m], float32 [m]
        Each user's training ratings (users x items CSR). Among equally similar neighbours the
        one earlier in the row wins, as in Surprise when the row is in its insertion order.
    sim : float [n_items, n_items]
        From :func:`pearson_baseline_dense`.
    k, min_k : int
        Neighbours used at most, and needed at least (else the baseline is returned).
    out : float32 or float64 [n]
        Predictions (unclipped).
    out_k : int32 [n]
        Neighbours actually used (0 when the prediction is the baseline).
    """
    n = users.shape[0]
    for blk in nb.prange((n + _PAIR_BLOCK - 1) // _PAIR_BLOCK):
        h_sim = np.empty(k)
        h_key = np.empty(k, dtype=np.int64)
        h_val = np.empty(k)
        for t in range(blk * _PAIR_BLOCK, min(n, (blk + 1) * _PAIR_BLOCK)):
            u = users[t]
            i = items[t]
            base_u = mu + user_bias[u]
            size = 0
            for q in range(user_indptr[u], user_indptr[u + 1]):
                j = user_items[q]
                s = sim[i, j]
                if s > 0.0:
                    resid = user_ratings[q] - (base_u + item_bias[j])
                    size = _heap_push(h_sim, h_key, h_val, size, k, s, q, resid)
            est = base_u + item_bias[i]
            used = 0
            if size >= min_k and size > 0:
                sum_s = 0.0
                sum_r = 0.0
                for c in range(size):
                    sum_s += h_sim[c]
                    sum_r += h_sim[c] * h_val[c]
                est += sum_r / sum_s
                used = size
            out[t] = est
            out_k[t] = used


@nb.njit(cache=True, nogil=True, parallel=True)
def predict_pairs_topk(
    users, items, mu, user_bias, item_bias, user_indptr, user_items, user_ratings,
    nbr_items, nbr_sims, k, min_k, out, out_k,
):  # fmt: skip
    """Predict each pair from the kept neighbours of :func:`pearson_baseline_topk`.

    As :func:`predict_pairs_dense`, with ``nbr_items`` / ``nbr_sims`` [n_items, n_neighbors]
    in place of ``sim``; ``user_items`` must be sorted within each row (binary search). The
    ``k`` neighbours are the first ``k`` of item ``i``'s kept list that the user rated.
    """
    n = users.shape[0]
    width = nbr_items.shape[1]
    for t in nb.prange(n):
        u = users[t]
        i = items[t]
        base_u = mu + user_bias[u]
        lo0 = user_indptr[u]
        hi0 = user_indptr[u + 1]
        used = 0
        sum_s = 0.0
        sum_r = 0.0
        for c in range(width):
            if used == k:
                break
            j = nbr_items[i, c]
            if j < 0:
                break
            lo = lo0
            hi = hi0
            while lo < hi:
                mid = (lo + hi) >> 1
                if user_items[mid] < j:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < hi0 and user_items[lo] == j:
                s = nbr_sims[i, c]
                sum_s += s
                sum_r += s * (user_ratings[lo] - (base_u + item_bias[j]))
                used += 1
        est = base_u + item_bias[i]
        if used >= min_k and used > 0:
            est += sum_r / sum_s
        else:
            used = 0
        out[t] = est
        out_k[t] = used


_SCORE_TILE = 128


@nb.njit(cache=True, nogil=True, parallel=True)
def score_rows_dense(
    indptr, indices, ratings, mu, row_bias, item_bias, sim_t, cand, k, min_k, out,
):  # fmt: skip
    """Predict every candidate item for each history row from the dense similarity.

    ``out[r, c]`` is exactly what :func:`predict_pairs_dense` gives for the pair (row ``r``,
    item ``cand[c]``) with the same rows and biases: the same neighbours pushed in row order
    into the same bounded heap and summed in the heap's order, so the numbers agree bit for
    bit. Rows run in parallel; for each row, a tile of candidates' similarities to the
    row's items is first gathered from the rows of ``sim_t`` (contiguous reads: the user's
    items' rows, once per row) into a small workspace, then each candidate's neighbours are
    chosen from it, instead of reading ``sim[i, j]`` scattered over the whole matrix for
    every pair.

    Parameters
    ----------
    indptr, indices, ratings : int64 [n_rows + 1], int32 [m], float32 [m]
        The rows' histories (CSR, each row in the order that breaks similarity ties).
    mu : float
    row_bias : float64 [n_rows]
        Each row's user bias.
    item_bias : float64 [n_items]
    sim_t : float [n_items, n_items]
        The transposed similarity, ``sim_t[j, i] = s_ij`` (the dense similarity itself
        when it is symmetric, as :func:`pearson_baseline_dense` makes it with sorted rows).
    cand : int32 [n_cand]
        Candidate items.
    k, min_k : int
        As in :func:`predict_pairs_dense`.
    out : float32 or float64 [n_rows, n_cand]
        Predictions (unclipped).
    """
    n_rows = indptr.shape[0] - 1
    n_cand = cand.shape[0]
    for r in nb.prange(n_rows):
        lo = indptr[r]
        m = indptr[r + 1] - lo
        base_u = mu + row_bias[r]
        resid = np.empty(m)
        for q in range(m):
            resid[q] = ratings[lo + q] - (base_u + item_bias[indices[lo + q]])
        tile = max(1, min(_SCORE_TILE, n_cand))
        gathered = np.empty((tile, m), dtype=sim_t.dtype)
        positive = np.empty(m, dtype=np.int64)
        h_sim = np.empty(k)
        h_key = np.empty(k, dtype=np.int64)
        h_val = np.empty(k)
        for start in range(0, n_cand, tile):
            width = min(tile, n_cand - start)
            for q in range(m):
                row = sim_t[indices[lo + q]]
                for c in range(width):
                    gathered[c, q] = row[cand[start + c]]
            for c in range(width):
                i = cand[start + c]
                g = gathered[c]
                # _heap_push of the positives in row order q = 0, 1, ...: each new key is
                # above every key held, so while filling the push is _push_last_key, and
                # once full a new entry beats the root exactly when its similarity is
                # larger (then it replaces the root, as in _heap_push); the positives are
                # listed first without branches
                n_pos = 0
                for q in range(m):
                    positive[n_pos] = q
                    n_pos += g[q] > 0.0
                size = 0
                fill = min(n_pos, k)
                for t in range(fill):
                    q = positive[t]
                    size = _push_last_key(h_sim, h_key, h_val, size, g[q], q, resid[q])
                if fill == k and k > 0:
                    root = h_sim[0]
                    for t in range(fill, n_pos):
                        q = positive[t]
                        s = g[q]
                        if s > root:
                            h_sim[0], h_key[0], h_val[0] = s, q, resid[q]
                            _sift_down(h_sim, h_key, h_val, k, 0)
                            root = h_sim[0]
                est = base_u + item_bias[i]
                if size >= min_k and size > 0:
                    sum_s = 0.0
                    sum_r = 0.0
                    for h in range(size):
                        sum_s += h_sim[h]
                        sum_r += h_sim[h] * h_val[h]
                    est += sum_r / sum_s
                out[r, start + c] = est


@nb.njit(cache=True, nogil=True, parallel=True)
def score_rows_topk(
    indptr, indices, ratings, mu, row_bias, item_bias, nbr_items, nbr_sims, cand, k, min_k,
    n_blocks, out,
):  # fmt: skip
    """Predict every candidate item for each history row from the kept neighbours.

    ``out[r, c]`` is exactly what :func:`predict_pairs_topk` gives for the pair (row ``r``,
    item ``cand[c]``) on rows sorted within (the same neighbours in the same order, the same
    sums). Rows run in parallel; each marks its items' positions in a workspace of
    ``n_items`` (first occurrence), so a neighbour's lookup is one read instead of a binary
    search.

    Parameters as :func:`score_rows_dense`, with ``nbr_items`` / ``nbr_sims``
    [n_items, n_neighbors] from :func:`pearson_baseline_topk` in place of ``sim_t``, and
    ``n_blocks`` work units (each with its own workspace, taking every ``n_blocks``-th row; a
    few per thread; does not change the result).
    """
    n_rows = indptr.shape[0] - 1
    n_cand = cand.shape[0]
    n_items = item_bias.shape[0]
    width = nbr_items.shape[1]
    for b in nb.prange(n_blocks):
        pos = np.full(n_items, -1, dtype=np.int64)
        for r in range(b, n_rows, n_blocks):
            lo = indptr[r]
            hi = indptr[r + 1]
            base_u = mu + row_bias[r]
            for q in range(lo, hi):
                if pos[indices[q]] < 0:
                    pos[indices[q]] = q
            for c in range(n_cand):
                i = cand[c]
                used = 0
                sum_s = 0.0
                sum_r = 0.0
                for h in range(width):
                    if used == k:
                        break
                    j = nbr_items[i, h]
                    if j < 0:
                        break
                    q = pos[j]
                    if q >= 0:
                        s = nbr_sims[i, h]
                        sum_s += s
                        sum_r += s * (ratings[q] - (base_u + item_bias[j]))
                        used += 1
                est = base_u + item_bias[i]
                if used >= min_k and used > 0:
                    est += sum_r / sum_s
                out[r, c] = est
            for q in range(lo, hi):
                pos[indices[q]] = -1


# --- slow references, used only by tests ---------------------------------------------------
def _reference_pearson_baseline(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    shrinkage: float,
    min_support: int,
) -> np.ndarray:
    """The similarity from dense masked users x items arrays (tiny data only), float64."""
    m = np.zeros((n_users, n_items))
    d = np.zeros((n_users, n_items))
    m[users, items] = 1.0
    d[users, items] = ratings - (mu + user_bias[users] + item_bias[items])
    freq = m.T @ m
    prods = d.T @ d
    sq_i = (d**2).T @ m  # [i, j]: sum over common raters of d_ui^2
    sq_j = m.T @ (d**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = prods / np.sqrt(sq_i * sq_j)
        sim = rho * (freq - 1) / (freq - 1 + shrinkage)
    sim[(freq < max(2, min_support)) | ~np.isfinite(sim)] = 0.0
    np.fill_diagonal(sim, 1.0)
    return sim


def _reference_predict_pairs(
    users: np.ndarray,
    items: np.ndarray,
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_rows: list[list[tuple[int, float]]],
    sim: np.ndarray,
    k: int,
    min_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Surprise's ``KNNBaseline.estimate`` (item-based) written out; ``user_rows[u]`` lists
    ``(item, rating)`` in row order."""
    out = np.empty(len(users))
    used = np.zeros(len(users), dtype=np.int64)
    for t, (u, i) in enumerate(zip(users, items, strict=True)):
        est = mu + user_bias[u] + item_bias[i]
        neighbours = [(j, sim[i, j], r) for j, r in user_rows[u]]
        chosen = heapq.nlargest(k, neighbours, key=lambda x: x[1])
        sum_s = sum_r = 0.0
        actual = 0
        for j, s, r in chosen:
            if s > 0:
                sum_s += s
                sum_r += s * (r - (mu + user_bias[u] + item_bias[j]))
                actual += 1
        if actual >= min_k and sum_s > 0:
            est += sum_r / sum_s
            used[t] = actual
        out[t] = est
    return out, used


def _reference_topk(sim: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``n_neighbors`` best positive off-diagonal entries of a dense similarity."""
    n = sim.shape[0]
    ids = np.full((n, n_neighbors), -1, dtype=np.int32)
    vals = np.zeros((n, n_neighbors))
    for i in range(n):
        cand = [(-sim[i, j], j) for j in range(n) if j != i and sim[i, j] > 0]
        for c, (neg, j) in enumerate(sorted(cand)[:n_neighbors]):
            ids[i, c] = j
            vals[i, c] = -neg
    return ids, vals
