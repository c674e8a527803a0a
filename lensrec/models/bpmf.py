"""BPMF: Bayesian probabilistic matrix factorisation by Gibbs sampling, biases included."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from .._config import numba_threads, seed_from, single_threaded_blas
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..kernels import csr_parts, triples_by_row
from ..kernels.bpmf import (
    augment,
    predict_pairs,
    sample_alpha,
    sample_hyper,
    sample_rows,
    squared_error,
    update_mean_factors,
)
from ..kernels.bpmf_implicit import (
    implicit_sums,
    offset_ratings,
    residual_stats,
    sample_implicit,
)
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._trainer import EpochTrainer, TrainingDivergedError
from ._validation import RatingValidation
from .base import Callback, Capabilities, Query, RatingPredictor, register

__all__ = ["BPMF"]

_log = logging.getLogger(__name__)

#: below this many ratings the chain runs on one numba thread: a sweep is then a few
#: milliseconds of work, and starting parallel regions three times per sweep costs more than
#: it saves (10x slower on a busy 2-core machine); the draws are the same either way
_PARALLEL_MIN_RATINGS = 20_000


def _kept_positions(n_samples: int, count: int) -> set[int]:
    """``count`` evenly spaced 1-based positions among ``n_samples`` kept samples, the last
    one included (which samples the fold-in keeps)."""
    count = min(count, n_samples)
    return {int(math.ceil((j + 1) * n_samples / count)) for j in range(count)}


@register("bpmf")
class BPMF(RatingPredictor):
    """Bayesian probabilistic matrix factorisation (BPMF), biases included, by Gibbs sampling.

    Salakhutdinov & Mnih, "Bayesian probabilistic matrix factorization using Markov chain
    Monte Carlo", ICML 2008. Ratings are ``r_ui ~ N(mu + p_u . q_i + b_u + b_i, 1 / alpha)``
    with ``mu`` the training mean; each user row ``[p_u, b_u]`` is Gaussian with a mean and
    precision matrix that have a Normal-Wishart prior, and so is each item row ``[q_i, b_i]``
    (the bias is one more coordinate of the row, sharing its prior: see
    :mod:`lensrec.kernels.bpmf`). A Gibbs sweep draws the user hyper-parameters, every user
    row given the items (in parallel), the item hyper-parameters, every item row given the
    users, and (``alpha="sample"``) the noise precision from its Gamma posterior. After
    ``burn_in`` sweeps, the predictions of the next ``n_samples`` sweeps are averaged: that
    average, not a single point estimate, is what makes BPMF resist over-fitting without a
    tuned regularisation or early stopping.

    **Predictions and rankings.** The average of the ``S`` samples' predictions is the
    matrix ``(1/S) sum_s X_s Y_s^T`` of the samples' serving vectors ``[p, b, 1]`` and
    ``[q, 1, b]``. It is kept as a running low-rank product ``A B^T`` of rank at most
    ``mean_rank`` (:func:`lensrec.kernels.bpmf.update_mean_factors`): exact while
    ``S * (factors + 2) <= mean_rank``, otherwise its leading singular directions. Both
    ``predict`` and ``recommend`` score ``mu + A_u . B_i``, so a user's predicted ratings and
    the ranking of their list agree exactly. The truncation costs little: on four
    validation sets carved from ml-100k ua/u1/u2 base, the low-rank mean's RMSE was at most
    0.0005 above that of the exact average of the sample predictions (0.0001 on average),
    the same at rank 24, 32, 48, 64 or 96; ``mean_dropped_`` tells the share of the mean's
    energy the last truncation dropped. The validation RMSE in ``history_`` is that of the
    exact running average (its pairs are accumulated sample by sample).

    **Defaults** were chosen on those four validation sets (a random 10% of ua.base and of
    u1.base, each user's first 5 ratings in file order of ua.base and of u2.base, which
    mimics ua.test), never on a test part; the mean validation RMSE is given with each
    parameter below (0.9112 at the defaults, 0.9114 through the low-rank mean; BiasedMF's
    defaults: 0.9231), measured before ``implicit`` existed, i.e. at ``implicit="none"``;
    ``implicit`` was chosen last, on the same kinds of sets (see it below).

    **Cost.** A sweep of 10M synthetic ratings (70k users, 10k items, k = 10) takes about
    0.55 s on 2 cores without implicit feedback and 4.0 s with ``implicit="both"`` (the two
    scans over the implicit vectors are sequential Gibbs scans, parallel only within a
    popular item or a heavy user), plus about 0.8 s for the running mean at
    ``mean_rank=32`` (2.2 s at 64); 1M ratings: 0.07 s and 0.34 s. On ml-100k a fit with the
    defaults takes about 13 s (4 s with ``implicit="none"``). For a quick chain on large
    data, ``implicit="none"``.

    **Memory** is linear in the ratings: the ratings twice (by user and by item, 8 bytes
    each), the current sample, ``A`` and ``B`` (``mean_rank`` columns) and
    ``fold_in_samples`` copies of the item rows; never users x items.

    **Users never seen** (``recommend(None, history=...)``) are folded in per kept sample:
    for each of the ``fold_in_samples`` samples kept evenly spaced over the chain, the
    posterior mean of the new user's row given their ratings, that sample's item rows, user
    hyper-parameters and ``alpha`` (exact Gaussian conditional, the item rows fixed); their
    scores are the average over those samples.

    Parameters
    ----------
    factors : int, default 10
        Latent dimensions ``k`` (each row has ``k + 1`` coordinates with its bias). 6, 8,
        10, 15, 20 and 30 were within 0.001 of each other on validation (seed-to-seed
        spread 0.0005); 10 is the paper's smallest and the cheapest of the best.
    n_samples : int, default 400
        Gibbs samples averaged after the burn-in. More lowers the Monte Carlo noise of the
        average: validation RMSE 0.9127 after 100, 0.9121 after 200, 0.9112 after 400
        (lower on each of the four sets). Time is linear in it; 100 is a fair quick choice.
    burn_in : int, default 30
        Sweeps discarded before averaging. With ``init_std=0.5`` the chain's train RMSE and
        ``alpha`` settle within 15-20 sweeps on ml-100k.
    alpha : float or "sample", default "sample"
        Precision of the rating noise. The paper fixes 2; ``"sample"`` draws it every sweep
        from its Gamma posterior (``alpha_shape``, ``alpha_rate``), which was better on every
        validation set (by 0.002-0.01; it settles near 1.6 on ml-100k).
    alpha_shape, alpha_rate : float, default 1.0, 1.0
        Shape and rate of the Gamma prior on ``alpha`` (``alpha="sample"`` only); weak, as
        the data (one term per rating) dominates.
    beta0 : float, default 2.0
        Normal-Wishart prior: pseudo-count of the prior on the rows' mean (the paper's 2).
        The four Normal-Wishart parameters hardly matter on ml-100k (hundreds of rows per
        side): ``beta0=0.5``, ``nu0=22`` or ``w0=10`` were within the seed-to-seed spread
        of the paper's values; ``w0=0.1`` was 0.003 worse.
    nu0 : float or None, default None
        Normal-Wishart prior: degrees of freedom of the Wishart prior on the rows'
        precision; None takes ``factors + 1`` (the row dimension, as in the paper). Must be
        greater than ``factors``.
    w0 : float, default 1.0
        Normal-Wishart prior: scale matrix ``W0 = w0 * I`` of the Wishart prior (the
        paper's identity).
    mu0 : float, default 0.0
        Normal-Wishart prior: the prior mean of every coordinate of the rows' mean (the
        paper's 0; ratings are centred by ``mu``).
    init_std : float, default 0.5
        Standard deviation of the random initial rows. A start at the scale the chain
        settles at shortens the burn-in: from ``0.1`` the chain took ~150 sweeps on
        ml-100k to reach the train RMSE it reaches in ~15 from ``0.5``.
    mean_rank : int, default 32
        Rank kept for the running mean of the predictions (see above). Memory and the time
        to fold in each sample grow with it (``O((n_users + n_items) (mean_rank + k)^2)``
        per sample); 64 was no better on validation and 2.8x slower.
    fold_in_samples : int, default 20
        Samples kept (their item rows, user hyper-parameters and ``alpha``) to fold in
        users the model never saw.
    implicit : {"none", "user", "both"}, default "both"
        Implicit feedback, Bayesian SVD++ (:mod:`lensrec.kernels.bpmf_implicit`):
        ``"user"`` adds to each user's factors ``|N(u)|^-1/2 sum_{j in N(u)} y_j`` over the
        items the user rated (Koren's SVD++ term, each ``y_j`` with its own Normal-Wishart
        prior, sampled); ``"both"`` also adds to each item's factors the same sum of ``z_v``
        over the users who rated it (Rendle et al.'s "flipped" variant). It tells the model
        who rated what, beyond the ratings, which helps users and items with few ratings.
        Chosen on validation only (random_state 0, the other defaults): a random 10% of
        each user's rows of ua.base: RMSE 0.8942 without, 0.8912 ``"user"``, **0.8751**
        ``"both"``; of u1.base: 0.9077, 0.9072, **0.8933**; each user's last 5 rows (file
        order) of ua.base, which mimics ua.test: 0.9493 without, **0.9355** ``"both"``; of
        u2.base: 0.9448, **0.9294**. The cost: two more Gibbs scans per sweep, over the
        implicit vectors, each ``O(n k^2)`` for ``n`` ratings: a fit on ml-100k takes about
        3x as long, 7x at 10M ratings (see Cost above).
    random_state : None, int or numpy Generator
        Seeds the initial rows, the hyper-parameter draws and the row samplers' streams.
        Rows are drawn in parallel blocks, each block from its own stream, so the same seed
        gives the same model bit for bit whatever the thread count (on one machine).

    Attributes
    ----------
    global_mean_ : float
        ``mu``, the training mean.
    user_factors_, item_factors_ : float32 [n_users, r], [n_items, r]
        ``A`` and ``B``: ``mu + A_u . B_i`` is the posterior-mean prediction (before
        clipping to ``rating_scale_``), biases included; ``r <= mean_rank``. These are not
        the samples' factors (those are not identifiable across samples).
    user_bias_, item_bias_ : float32 [n_users], [n_items]
        Posterior means of the biases (used by ``predict(..., missing="baseline")``).
    alpha_ : float
        Mean of ``alpha`` over the kept samples (the fixed value when not sampled).
    n_kept_ : int
        Samples averaged (``n_samples`` unless the callback stopped the chain early; a chain
        stopped during the burn-in keeps its last sample). BPMF selects no sweep, so it has
        no ``best_epoch_``: the validation RMSE is watched, never used to choose.
    mean_dropped_ : float
        Share of the squared Frobenius norm of the mean matrix dropped by the last
        truncation to ``mean_rank`` (0 while exact).
    history_ : dict of lists of float
        Per sweep: ``"train_rmse"`` (of that sweep's sample), ``"alpha"`` (after the
        sweep) and, when ``fit`` got ``valid``, ``"valid_rmse"``: of the running average of
        the kept samples' predictions (of the sweep's own sample during the burn-in),
        clipped to the rating scale.
    fold_in_item_rows_ : float32 [T, n_items, factors + 1]
    fold_in_user_mean_ : float64 [T, factors + 1]
    fold_in_user_precision_ : float64 [T, factors + 1, factors + 1]
    fold_in_alpha_ : float64 [T]
        The ``T <= fold_in_samples`` kept samples used to fold in new users.

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> train = make_ratings()
    >>> model = BPMF(factors=4, n_samples=20, burn_in=5, random_state=0).fit(train)
    >>> model.predict([0, 1], [0, 1]).dtype
    dtype('float32')
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        epoch_trained=True,
    )
    factors: Annotated[int, Range(1), Search(4, 64, log=True)] = 10
    n_samples: Annotated[int, Range(1), Search(50, 1000, log=True)] = 400
    burn_in: Annotated[int, Range(0), Search(10, 200, log=True)] = 30
    alpha: Annotated[float | Literal["sample"], Range(0.0, low_open=True)] = "sample"
    alpha_shape: Annotated[float, Range(0.0, low_open=True)] = 1.0
    alpha_rate: Annotated[float, Range(0.0, low_open=True)] = 1.0
    beta0: Annotated[float, Range(0.0, low_open=True), Search(0.1, 10.0, log=True)] = 2.0
    nu0: Annotated[float | None, Range(0.0, low_open=True)] = None
    w0: Annotated[float, Range(0.0, low_open=True), Search(0.1, 10.0, log=True)] = 1.0
    mu0: float = 0.0
    init_std: Annotated[float, Range(0.0), Search(0.1, 1.0, log=True)] = 0.5
    mean_rank: Annotated[int, Range(1)] = 32
    fold_in_samples: Annotated[int, Range(1)] = 20
    implicit: Literal["none", "user", "both"] = "both"
    random_state: RandomState = None

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """Linear in the ratings: the kept training matrix, the ratings by user and by item
        (with the sort that builds them), the chain's rows, the running mean with its QR
        work space, the fold-in samples, and with implicit feedback its arrays."""
        d = int(self.factors) + 1
        k = d - 1
        rows = n_users + n_items
        wide = int(self.mean_rank) + d + 1
        implicit = 0
        if self.implicit != "none":
            # the adjusted ratings of both sides (float64), per row a float32 Gram matrix and
            # the residual, pending-shift, implicit-vector and effective-row arrays
            implicit = 16 * nnz + rows * (4 * k * k + 8 * 5 * k + 8 * d)
            implicit += 4 * int(self.fold_in_samples) * n_items * k
        return int(
            12 * nnz + 24 * nnz + 8 * d * rows + 32 * wide * rows
            + 4 * int(self.fold_in_samples) * n_items * d + implicit
        )  # fmt: skip

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the sampling, prediction and error kernels on tiny data."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        model = cls(factors=2, n_samples=2, burn_in=1, random_state=0)
        model.fit(data, valid=data).predict([0], [0])
        model.recommend(None, k=2, history=data.csr("rating")[:1])

    # --- training ------------------------------------------------------------------------
    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        if train.ratings is None:
            raise ConfigError("BPMF needs explicit ratings; the training data is implicit")
        if valid is not None and valid.ratings is None:
            raise ConfigError("BPMF: the validation data has no ratings")
        k = int(self.factors)
        d = k + 1
        nu0 = float(d) if self.nu0 is None else float(self.nu0)
        if nu0 <= k:
            raise ConfigError(
                f"BPMF: nu0 must be greater than factors ({k}) for a proper Wishart prior, "
                f"got {self.nu0!r}; leave it None (factors + 1) or set BPMF(nu0=...)"
            )
        users = np.ascontiguousarray(train.users, dtype=np.int32)
        items = np.ascontiguousarray(train.items, dtype=np.int32)
        ratings = np.ascontiguousarray(train.ratings, dtype=np.float32)
        if not np.all(np.isfinite(ratings)):
            raise ConfigError("BPMF: the training ratings contain NaN or infinite values")
        n_users, n_items, n = train.n_users, train.n_items, len(ratings)
        kept_matrix = self.user_items_  # train.csr("rating"), built by fit
        if kept_matrix.nnz == n:  # no repeated pairs: reuse it (10M ratings: 0.3 s, not 3 s)
            by_user = csr_parts(kept_matrix)
            by_item = csr_parts(kept_matrix.tocsc())
        else:  # repeated (user, item) pairs are separate ratings, which the CSR added up
            by_user = triples_by_row(users, items, ratings, n_users)
            by_item = triples_by_row(items, users, ratings, n_items)
        mu = float(ratings.astype(np.float64).mean())
        scale_lo, scale_hi = (float(v) for v in self.rating_scale_)

        w0 = float(self.w0) * np.eye(d)
        mu0 = np.full(d, float(self.mu0))

        def draw_hyper(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return sample_hyper(rows, gen, beta0=float(self.beta0), nu0=nu0, w0=w0, mu0=mu0)

        x = gen.standard_normal((n_users, d)) * float(self.init_std)
        y = gen.standard_normal((n_items, d)) * float(self.init_std)
        seed = seed_from(gen)
        # implicit feedback (SVD++'s y_j for users; z_v for items when "both"): the effective
        # rows are [p_u + s_u, b_u] and [q_i + t_i, b_i], s_u = c_u sum_{j in N(u)} y_j
        use_user = self.implicit in ("user", "both")
        use_item = self.implicit == "both"
        x_eff, y_eff = x, y
        if use_user or use_item:
            n_u_rated = np.diff(by_user[0]).astype(np.float64)
            n_i_rated = np.diff(by_item[0]).astype(np.float64)
            c_user = 1.0 / np.sqrt(np.maximum(n_u_rated, 1.0))
            c_item = 1.0 / np.sqrt(np.maximum(n_i_rated, 1.0))
            y_imp = np.zeros((n_items, k))  # enters users (who rated item j)
            z_imp = np.zeros((n_users, k))  # enters items (rated by user v)
            s_user = np.zeros((n_users, k))
            t_item = np.zeros((n_items, k))
            adj_user = np.empty(n, dtype=np.float64)
            adj_item = np.empty(n, dtype=np.float64)
            gram_u = np.empty((n_users, k, k), dtype=np.float32)
            resid_u = np.empty((n_users, k))
            gram_i = np.empty((n_items, k, k), dtype=np.float32)
            resid_i = np.empty((n_items, k))
            x_eff, y_eff = x.copy(), y.copy()
            w0_k = float(self.w0) * np.eye(k)
            mu0_k = np.full(k, float(self.mu0))

            def draw_hyper_k(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return sample_hyper(
                    rows, gen, beta0=float(self.beta0), nu0=float(k), w0=w0_k, mu0=mu0_k
                )

        sampled_alpha = self.alpha == "sample"
        alpha = [2.0 if sampled_alpha else float(self.alpha)]

        burn_in, n_samples = int(self.burn_in), int(self.n_samples)
        fold_at = _kept_positions(n_samples, int(self.fold_in_samples))
        state: dict[str, Any] = dict(kept=0, a=None, b=None, dropped=0.0, alpha_sum=0.0)
        bias_sum = [np.zeros(n_users), np.zeros(n_items)]
        folds: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray | None]] = []
        last_hyper: list[Any] = [None]

        # the validation RMSE is that of the running average of the kept samples' predictions
        # (float64), accumulated pair by pair
        check = None
        if valid is not None and len(valid):
            check = RatingValidation(valid, (scale_lo, scale_hi), dtype=np.float64)
        n_valid = 0 if check is None else len(check)
        v_total, v_now = np.zeros(n_valid), np.zeros(n_valid)  # summed / current predictions

        def keep_sample(user_mean: np.ndarray, user_prec: np.ndarray) -> None:
            state["kept"] += 1
            kept = state["kept"]
            state["a"], state["b"], state["dropped"] = update_mean_factors(
                state["a"], state["b"], x_eff, y_eff, kept - 1, int(self.mean_rank)
            )
            bias_sum[0] += x[:, k]
            bias_sum[1] += y[:, k]
            state["alpha_sum"] += alpha[0]
            if kept in fold_at:
                imp = y_imp.astype(np.float32) if use_user else None
                folds.append((y_eff.astype(np.float32), user_mean, user_prec, alpha[0], imp))

        def step_implicit(sweep: int) -> tuple[np.ndarray, np.ndarray]:
            """One sweep with the implicit parts; returns the user hyper-parameters."""
            streams = 4 * (sweep - 1)
            m_u, l_u = draw_hyper(x)
            offset_ratings(*by_user[:2], by_user[2], s_user, y_eff, adj_user)
            sample_rows(by_user[0], by_user[1], adj_user, y_eff, mu, alpha[0], m_u, l_u,
                        seed, streams, x)  # fmt: skip
            x_eff[:] = x
            x_eff[:, :k] += s_user
            if use_user:
                residual_stats(*by_user, mu, x_eff, y_eff, gram_u, resid_u)
                m_y, l_y = draw_hyper_k(y_imp)
                sample_implicit(by_item[0], by_item[1], c_user, gram_u, resid_u, m_y, l_y,
                                alpha[0], seed, streams + 1, y_imp)  # fmt: skip
                implicit_sums(by_user[0], by_user[1], c_user, y_imp, s_user)
                x_eff[:, :k] = x[:, :k] + s_user
            m_v, l_v = draw_hyper(y)
            offset_ratings(*by_item[:2], by_item[2], t_item, x_eff, adj_item)
            sample_rows(by_item[0], by_item[1], adj_item, x_eff, mu, alpha[0], m_v, l_v,
                        seed, streams + 2, y)  # fmt: skip
            y_eff[:] = y
            y_eff[:, :k] += t_item
            if use_item:
                residual_stats(*by_item, mu, y_eff, x_eff, gram_i, resid_i)
                m_z, l_z = draw_hyper_k(z_imp)
                sample_implicit(by_user[0], by_user[1], c_item, gram_i, resid_i, m_z, l_z,
                                alpha[0], seed, streams + 3, z_imp)  # fmt: skip
                implicit_sums(by_item[0], by_item[1], c_item, z_imp, t_item)
                y_eff[:, :k] = y[:, :k] + t_item
            return m_u, l_u

        def step(sweep: int) -> dict[str, float]:
            if use_user or use_item:
                m_u, l_u = step_implicit(sweep)
            else:
                m_u, l_u = draw_hyper(x)
                sample_rows(*by_user, y, mu, alpha[0], m_u, l_u, seed, 2 * sweep - 2, x)
                m_v, l_v = draw_hyper(y)
                sample_rows(*by_item, x, mu, alpha[0], m_v, l_v, seed, 2 * sweep - 1, y)
            sse = float(squared_error(users, items, ratings, mu, x_eff, y_eff))
            if not math.isfinite(sse):
                raise TrainingDivergedError(
                    f"BPMF: the chain produced non-finite values at sweep {sweep}; check the "
                    "ratings' scale, or raise w0 / lower init_std"
                )
            if sampled_alpha:
                alpha[0] = sample_alpha(
                    sse, n, gen, a0=float(self.alpha_shape), b0=float(self.alpha_rate)
                )
            last_hyper[0] = (m_u, l_u)
            if sweep > burn_in:
                keep_sample(m_u, l_u)
            if check is not None:
                predict_pairs(check.users, check.items, mu, x_eff, y_eff, v_now, False)
                if sweep > burn_in:
                    np.add(v_total, v_now, out=v_total)
            return {"train_rmse": math.sqrt(sse / max(n, 1)), "alpha": alpha[0]}

        def averaged(u: np.ndarray, i: np.ndarray, out: np.ndarray) -> None:
            """The predictions of the validation pairs ``(u, i)``, accumulated by ``step``:
            the kept samples' average (during the burn-in, the sweep's own sample)."""
            kept = state["kept"]
            if kept:
                np.divide(v_total, kept, out=out)
            else:
                out[:] = v_now

        def validate() -> float:
            assert check is not None
            return check(averaged)

        trainer: EpochTrainer[None] = EpochTrainer(
            "BPMF",
            epochs=burn_in + n_samples,
            patience=None,
            metric="valid_rmse",
            hint="check the ratings, or raise w0 / lower init_std",
            show_progress=show_progress,
            callback=callback,
        )
        # the NumPy steps (hyper-parameters, the running mean) are small: with a
        # multi-threaded BLAS beside numba's threads they ran 10-30x slower
        with single_threaded_blas(), numba_threads(1 if n < _PARALLEL_MIN_RATINGS else None):
            log, _ = trainer.run(step, validate if check is not None else None, None)
            if state["kept"] == 0:  # stopped during the burn-in: keep the last sample
                m_u, l_u = last_hyper[0]
                fold_at = {1}
                keep_sample(m_u, l_u)

        kept = state["kept"]
        self.global_mean_ = mu
        self.user_factors_ = np.ascontiguousarray(state["a"], dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(state["b"], dtype=np.float32)
        self.user_bias_ = (bias_sum[0] / kept).astype(np.float32)
        self.item_bias_ = (bias_sum[1] / kept).astype(np.float32)
        self.alpha_ = state["alpha_sum"] / kept
        self.n_kept_ = kept
        self.mean_dropped_ = float(state["dropped"])
        hist = log.history
        self.history_ = {key: list(hist.get(key, [])) for key in ("train_rmse", "alpha")}
        self.history_["valid_rmse"] = list(hist.get("valid_rmse", []))
        self.fold_in_item_rows_ = np.stack([f[0] for f in folds])
        self.fold_in_user_mean_ = np.stack([f[1] for f in folds])
        self.fold_in_user_precision_ = np.stack([f[2] for f in folds])
        self.fold_in_alpha_ = np.array([f[3] for f in folds], dtype=np.float64)
        if use_user:
            self.fold_in_implicit_rows_ = np.stack([f[4] for f in folds if f[4] is not None])

    # --- scoring -------------------------------------------------------------------------
    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        uv, iv = self._packed()
        out = np.empty(len(users), dtype=np.float32)
        predict_pairs(
            np.ascontiguousarray(users, dtype=np.int32),
            np.ascontiguousarray(items, dtype=np.int32),
            float(self.global_mean_),
            uv,
            iv,
            out,
            False,
        )
        return out

    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        """``[A, 0]`` and ``[B, 0]``: :func:`predict_pairs` reads the last column as biases."""

        def pack() -> tuple[np.ndarray, np.ndarray]:
            zu = np.zeros((self.user_factors_.shape[0], 1), dtype=np.float32)
            zi = np.zeros((self.item_factors_.shape[0], 1), dtype=np.float32)
            return (
                np.ascontiguousarray(np.hstack([self.user_factors_, zu]), dtype=np.float32),
                np.ascontiguousarray(np.hstack([self.item_factors_, zi]), dtype=np.float32),
            )

        return self._cached("packed", pack)

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        """``[A_u, mu]``: against ``[B_i, 1]`` the posterior-mean predicted rating."""
        out = np.empty((len(users), self.user_factors_.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = self.user_factors_[users]
        out[:, -1] = np.float32(self.global_mean_)
        return out

    def _item_vectors(self) -> np.ndarray:
        out = np.empty((self.item_factors_.shape[0], self.item_factors_.shape[1] + 1), np.float32)
        out[:, :-1] = self.item_factors_
        out[:, -1] = 1.0
        return out

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        """Known users: ``mu + A_u . B_i``; users given by a history: the fold-in average."""
        known = query.known
        if known.all():
            return super()._score(query, items)
        n_cols = self.n_items if items is None else len(items)
        out = np.empty((len(query), n_cols), dtype=np.float32)
        if known.any():
            out[known] = super()._score(Query(query.users[known], None), items)
        assert query.history is not None  # unknown users come with a history
        out[~known] = self._fold_in_scores(query.history[~known], items)
        return out

    def _fold_in_scores(self, history: sp.csr_matrix, items: IndexArray | None) -> np.ndarray:
        """Average over the kept samples of the scores of each history's posterior-mean row."""
        rows = self._fold_in_rows(history)  # [T, m, k + 1]
        mu = float(self.global_mean_)
        out = np.zeros((history.shape[0], self.n_items if items is None else len(items)))
        for s in range(rows.shape[0]):
            user_aug, item_aug = augment(rows[s], self.fold_in_item_rows_[s].astype(np.float64))
            if items is not None:
                item_aug = item_aug[items]
            out += user_aug @ item_aug.T
        return (mu + out / rows.shape[0]).astype(np.float32)

    def _fold_in_rows(self, history: sp.csr_matrix) -> np.ndarray:
        """``[T, m, k + 1]``: per kept sample, the posterior mean of each history's row given
        its ratings, that sample's item rows, user hyper-parameters and ``alpha``."""
        item_rows = self.fold_in_item_rows_
        t_count, _, d = item_rows.shape
        k = d - 1
        mu = float(self.global_mean_)
        m = history.shape[0]
        out = np.empty((t_count, m, d))
        implicit = getattr(self, "fold_in_implicit_rows_", None)
        s_rows = np.zeros((t_count, m, k))
        prior_h = np.einsum("tpq,tq->tp", self.fold_in_user_precision_, self.fold_in_user_mean_)
        alphas = self.fold_in_alpha_
        for r in range(m):
            lo, hi = history.indptr[r], history.indptr[r + 1]
            its = history.indices[lo:hi]
            vals = history.data[lo:hi].astype(np.float64)
            rated = item_rows[:, its].astype(np.float64)  # [T, n, d]
            design = rated.copy()
            design[:, :, k] = 1.0
            target = vals[None, :] - mu - rated[:, :, k]
            if implicit is not None:  # s = |H|^-1/2 sum_{j in H} y_j, per kept sample
                s_rows[:, r] = implicit[:, its].astype(np.float64).sum(1) / np.sqrt(
                    max(its.size, 1)
                )
                target -= np.einsum("tnf,tf->tn", rated[:, :, :k], s_rows[:, r])
            prec = self.fold_in_user_precision_ + alphas[:, None, None] * np.einsum(
                "tnp,tnq->tpq", design, design
            )
            rhs = prior_h + alphas[:, None] * np.einsum("tnp,tn->tp", design, target)
            out[:, r] = np.linalg.solve(prec, rhs[:, :, None])[:, :, 0]
        out[:, :, :k] += s_rows  # the effective row [p + s, b]
        return out
