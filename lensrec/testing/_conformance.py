"""The conformance suite every model must pass, parametrised by its declared capabilities."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..data.planted import make_blocks, make_checkerboard, make_ratings
from ..errors import ConfigError, ModelFormatError, NotFittedError, UnknownIdError
from ..models.base import RatingPredictor, Recommender, load

__all__ = [
    "check_model",
    "check_known_answers",
    "make_ratings",
    "make_checkerboard",
    "make_blocks",
]

Factory = Callable[..., Recommender]


def _raises(exc: type[BaseException], call: Callable[[], Any], message: str) -> None:
    try:
        call()
    except exc:
        return
    raise AssertionError(message)


def check_model(
    factory: Factory,
    train: Interactions | None = None,
    *,
    k: int = 5,
    deterministic: bool = True,
    known_answers: bool = True,
) -> None:
    """Run every contract check on a model class or factory taking ``random_state=``.

    Raises AssertionError naming the broken rule. ``train`` defaults to planted ratings when
    the model needs ratings and planted implicit blocks otherwise; the contract checks run
    on it, and (``known_answers``) :func:`check_known_answers` runs on data whose right
    answer is known. Checks: unfitted use raises NotFittedError; fit returns self and keeps
    the hyper-parameters; the same seed gives the same output and a refit starts from
    scratch; a fit that raises leaves the model as it was; a batch row equals the single-user
    answer; seen items are excluded by default and with an explicit matrix; ``items=``
    restricts candidates; padding is -1 / -inf and scores are sorted; k <= 0 and unknown
    indices are errors; similar_items never returns the query item (or is refused when the
    model declares none); users never seen are scored from a history when the model folds
    in, and refused otherwise; rating models predict finite float32 values and honour
    ``missing="nan"``; get_params/set_params and save/load round-trip (seen items and all);
    a foreign or corrupt file raises ModelFormatError; ``warm_up`` runs on its own.
    """
    model = factory(random_state=42)
    cls = type(model)
    name = cls.__name__
    caps = cls.capabilities
    if train is None:
        train = make_ratings() if caps.needs_ratings else make_blocks(noise=0.05)[0]
    cls.warm_up()  # must run before any fit, on its own data, without error
    assert not model.is_fitted, f"{name}: warm_up must not touch instances"

    # unfitted use
    for call in (lambda: model.recommend([0], k=k), lambda: model.similar_items([0], k=k)):
        _raises(NotFittedError, call, f"{name}: use before fit must raise NotFittedError")

    params = model.get_params()
    assert model.fit(train) is model, f"{name}: fit must return self"
    assert model.get_params() == params, f"{name}: fit must not change hyper-parameters"
    clone = cls(**params)
    assert clone.get_params() == params, f"{name}: get_params does not round-trip"

    users = np.arange(train.n_users, dtype=np.int32)
    seen = train.csr()
    ids, scores = model.recommend(users, k=k)
    assert ids.shape == (train.n_users, k) and ids.dtype == np.int32, f"{name}: ids shape/dtype"
    assert scores.shape == (train.n_users, k) and scores.dtype == np.float32, f"{name}: scores"
    assert not np.isnan(scores).any(), f"{name}: NaN scores"
    finite = np.isfinite(scores)
    s = np.where(finite, scores, -np.inf)
    assert np.all(s[:, :-1] >= s[:, 1:]), f"{name}: scores not sorted best first"
    assert np.array_equal(ids < 0, ~finite), f"{name}: padding must be -1 with -inf"
    # seen items are excluded by default, and by an explicit matrix alike
    e_ids, _ = model.recommend(users, k=k, exclude=seen)
    assert np.array_equal(e_ids, ids), f"{name}: exclude=train.csr() differs from the default"
    for row, u in enumerate(users):
        got = ids[row][ids[row] >= 0]
        seen_u = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        assert not np.intersect1d(got, seen_u).size, f"{name}: seen item recommended to user {u}"
        assert np.unique(got).size == got.size, f"{name}: duplicate items in a list"
        n_unseen = train.n_items - seen_u.size
        assert got.size <= min(k, n_unseen), f"{name}: list longer than the unseen catalogue"
    # without exclusion, lists may contain seen items but stay well-formed
    n_ids, _ = model.recommend(users[:5], k=k, exclude=None)
    assert (n_ids >= 0).all(), f"{name}: exclude=None must fill every list"
    # batch equals single
    for u in users[:: max(1, len(users) // 5)]:
        one_ids, one_scores = model.recommend([u], k=k)
        assert np.array_equal(one_ids[0], ids[u]), (
            f"{name}: batch row differs from single for user {u}"
        )
        np.testing.assert_allclose(one_scores[0], scores[u], rtol=1e-5, atol=1e-6)
    # candidate restriction
    cand = np.arange(0, train.n_items, 2, dtype=np.int32)
    c_ids, _ = model.recommend(users[:5], k=k, items=cand)
    got = c_ids[c_ids >= 0]
    assert np.isin(got, cand).all(), f"{name}: items= not respected"
    # bad k and unknown indices
    for bad_k in (0, -1):
        _raises(
            ConfigError,
            partial(model.recommend, [0], k=bad_k),
            f"{name}: k={bad_k} accepted",
        )
        if caps.similar_items:
            _raises(
                ConfigError,
                partial(model.similar_items, [0], k=bad_k),
                f"{name}: similar_items k={bad_k} accepted",
            )
    for bad in (lambda: model.recommend([train.n_users], k=k), lambda: model.recommend([-1], k=k)):
        _raises(UnknownIdError, bad, f"{name}: an unknown user index must raise UnknownIdError")
    # similar items
    items = np.arange(min(train.n_items, 10), dtype=np.int32)
    if caps.similar_items:
        sim_ids, _ = model.similar_items(items, k=k)
        assert sim_ids.shape == (items.size, k), f"{name}: similar_items shape"
        for row, it in enumerate(items):
            assert it not in sim_ids[row], f"{name}: similar_items returned the query item {it}"
        _raises(
            UnknownIdError,
            lambda: model.similar_items([-1], k=k),
            f"{name}: similar_items on an unknown index must raise UnknownIdError",
        )
    else:
        _raises(
            ConfigError,
            lambda: model.similar_items(items, k=k),
            f"{name}: declares no similar_items, so it must refuse with ConfigError",
        )
    _check_history_queries(model, train, ids, k)
    if isinstance(model, RatingPredictor):
        _check_predict(model, train)

    # a fit that raises leaves the model as it was
    def broken_fit(*args: Any, **kwargs: Any) -> None:
        model.half_written_ = np.zeros(3)  # type: ignore[attr-defined]  # state a fit would set
        raise RuntimeError("boom")

    model._fit = broken_fit  # type: ignore[method-assign]
    try:
        _raises(RuntimeError, lambda: model.fit(train), f"{name}: the failing fit did not raise")
    finally:
        del model._fit
    t_ids, _ = model.recommend(users, k=k)
    assert np.array_equal(t_ids, ids), f"{name}: a fit that raised changed the fitted model"
    unfitted = factory(random_state=42)
    unfitted._fit = broken_fit  # type: ignore[method-assign]
    _raises(RuntimeError, lambda: unfitted.fit(train), f"{name}: the failing fit did not raise")
    assert not unfitted.is_fitted and not unfitted._fitted_state(), (
        f"{name}: a first fit that raised left fitted state behind"
    )

    # determinism
    if deterministic:
        again = factory(random_state=42).fit(train)
        ids2, scores2 = again.recommend(users, k=k)
        assert np.array_equal(ids, ids2), f"{name}: same seed gave different recommendations"
        np.testing.assert_allclose(scores, scores2, rtol=1e-6, atol=1e-6)
        model.fit(train)
        ids3, _ = model.recommend(users, k=k)
        assert np.array_equal(ids, ids3), f"{name}: refit did not start from scratch"

    _check_retrieval(model, train, users, k)
    _check_save_load(model, train, users, k)
    if known_answers:
        check_known_answers(factory)


def _check_retrieval(model: Recommender, train: Interactions, users: np.ndarray, k: int) -> None:
    """Derived state is built at fit, never on a query; 4 threads at once give the serial
    answers; an empty history goes down the fallback chain, flagged."""
    import threading

    name = type(model).__name__
    caps = type(model).capabilities
    before = dict(model._derived)
    model.recommend(users, k=k)
    if caps.similar_items:
        model.similar_items(np.arange(min(train.n_items, 5), dtype=np.int32), k=k)
    if caps.folds_in:
        hist = (train.csr("rating") if caps.fold_in_needs_ratings else train.csr())[:3]
        model.recommend(None, k=k, history=hist)
    if isinstance(model, RatingPredictor):
        model.predict(users[:3], np.zeros(3, dtype=np.int32)[: users[:3].size])
    assert set(model._derived) == set(before) and all(
        model._derived[key] is value for key, value in before.items()
    ), f"{name}: a query built or replaced derived state (it must be built at fit or load)"

    serial = [model.recommend(users[i::4], k=k) for i in range(4)]
    got: list[Any] = [None] * 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                got[i] = model.recommend(users[i::4], k=k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{name}: recommend from 4 threads raised {errors[0]!r}"
    for i in range(4):
        assert np.array_equal(got[i][0], serial[i][0]) and np.array_equal(
            got[i][1], serial[i][1]
        ), f"{name}: recommend from 4 threads at once differs from the serial answer"

    empty = sp.csr_matrix((2, train.n_items), dtype=np.float32)
    rec = model.recommend(None, k=k, history=empty)
    assert rec.fallback.all(), f"{name}: an empty history must go down the fallback chain"
    counts = np.bincount(train.items, minlength=train.n_items)
    order = sorted(range(train.n_items), key=lambda i: (-counts[i], i))[:k]
    assert rec.ids[0].tolist() == order, f"{name}: the fallback must rank by popularity"


def _check_history_queries(
    model: Recommender, train: Interactions, ids: np.ndarray, k: int
) -> None:
    name = type(model).__name__
    caps = type(model).capabilities
    hist = (train.csr("rating") if caps.fold_in_needs_ratings else train.csr())[:4]
    if not caps.folds_in:
        _raises(
            ConfigError,
            lambda: model.recommend(None, k=k, history=hist),
            f"{name}: declares no fold-in, so users it never saw must be refused",
        )
        return
    h_ids, h_scores = model.recommend(None, k=k, history=hist)
    assert h_ids.shape == (4, k), f"{name}: history query shape"
    assert np.isfinite(h_scores[h_ids >= 0]).all(), f"{name}: history query gave non-finite scores"
    for r in range(4):
        got = h_ids[r][h_ids[r] >= 0]
        assert not np.isin(got, hist.indices[hist.indptr[r] : hist.indptr[r + 1]]).any(), (
            f"{name}: an item of the history was recommended back"
        )
    # the same histories through recommend_for_history and with -1 user markers
    rows = [hist.indices[hist.indptr[r] : hist.indptr[r + 1]] for r in range(4)]
    ratings = [hist.data[hist.indptr[r] : hist.indptr[r + 1]] for r in range(4)]
    f_ids, _ = model.recommend_for_history(
        rows, k=k, ratings=ratings if caps.fold_in_needs_ratings else None
    )
    assert np.array_equal(f_ids, h_ids), f"{name}: recommend_for_history differs from history="
    m_ids, _ = model.recommend([-1, -1, -1, -1], k=k, history=hist)
    assert np.array_equal(m_ids, h_ids), f"{name}: users=-1 with history differs from users=None"
    # known users with their own training rows as history: the same lists when the model
    # scores from histories (item-item) - factor models keep their learned vectors
    mixed = np.array([0, -1, 2, -1], dtype=np.int32)
    x_ids, _ = model.recommend(mixed, k=k, history=hist)
    assert np.array_equal(x_ids[1], h_ids[1]) and np.array_equal(x_ids[3], h_ids[3]), (
        f"{name}: a batch mixing known and new users changed the new users' lists"
    )
    if caps.uses_history:
        assert np.array_equal(x_ids[0], ids[0]), f"{name}: scoring from history != fitted user"


def _check_predict(model: RatingPredictor, train: Interactions) -> None:
    name = type(model).__name__
    pred = model.predict(train.users, train.items)
    assert pred.dtype == np.float32 and pred.shape == (len(train),), f"{name}: predict shape"
    assert np.isfinite(pred).all(), f"{name}: predict gave non-finite values"
    _raises(
        UnknownIdError,
        lambda: model.predict([train.n_users], [0]),
        f"{name}: predict on an unknown user must raise UnknownIdError",
    )
    nan = model.predict([train.n_users, 0], [0, 0], missing="nan")
    assert np.isnan(nan[0]) and np.isfinite(nan[1]), f"{name}: predict(missing='nan')"
    _raises(
        TypeError,
        lambda: model.predict([0.5], [0], missing="nan"),
        f"{name}: predict(missing='nan') must reject non-integer indices",
    )


def _check_save_load(model: Recommender, train: Interactions, users: np.ndarray, k: int) -> None:
    name = type(model).__name__
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.lrec"
        model.save(path)
        back = load(path)
        assert type(back) is type(model), f"{name}: load gave {type(back).__name__}"
        assert back.get_params() == model.get_params(), f"{name}: params lost in save/load"
        assert back.user_ids_ == model.user_ids_ and back.item_ids_ == model.item_ids_
        b_ids, b_scores = back.recommend(users, k=k)
        m_ids, m_scores = model.recommend(users, k=k)
        assert np.array_equal(b_ids, m_ids), f"{name}: loaded model recommends differently"
        np.testing.assert_array_equal(b_scores, m_scores)
        if isinstance(model, RatingPredictor):
            assert isinstance(back, RatingPredictor)  # same type, checked above
            np.testing.assert_array_equal(
                back.predict(train.users, train.items), model.predict(train.users, train.items)
            )
        raw = path.read_bytes()
        corrupt = Path(tmp) / "corrupt.lrec"
        corrupt.write_bytes(raw[: len(raw) // 2])
        flipped = Path(tmp) / "flipped.lrec"
        flipped.write_bytes(_flip_last_byte_of_largest_member(raw))
        foreign = Path(tmp) / "foreign.lrec"
        foreign.write_bytes(b"PK\x03\x04 not really a zip")
        for bad_path in (corrupt, flipped, foreign):
            _raises(
                ModelFormatError,
                partial(load, bad_path),
                f"{name}: loading {bad_path.name} must raise ModelFormatError",
            )


def _flip_last_byte_of_largest_member(raw: bytes) -> bytes:
    """A copy of a zip whose largest member has one flipped byte (its CRC no longer matches)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    local = raw[info.header_offset : info.header_offset + 30]
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    pos = info.header_offset + 30 + name_len + extra_len + info.compress_size - 1
    data = bytearray(raw)
    data[pos] ^= 0xFF
    return bytes(data)


def check_known_answers(factory: Factory, *, k: int = 5) -> None:
    """Quality checks whose right answer is known in advance.

    - Personalised models, on planted groups (users interact inside their group, plus a
      little noise; for rating models the noise is rated 1-2 and the group 4-5): at least 80% of the top-``k`` unseen items of each user come from
      the user's own group; and, when the model folds in, so do the lists of users given
      only by their history.
    - Non-personalised models: the list follows the planted popularity order.
    - Rating models, on a planted low-rank matrix plus noise (non-personalised ones: planted
      user and item biases plus noise): held-out RMSE at most 0.85x that of predicting the
      training mean.

    A model that scores everything 0, or at random, fails.
    """
    model = factory(random_state=42)
    name = type(model).__name__
    caps = type(model).capabilities
    data, user_group, item_group = make_blocks(
        n_groups=4, users_per_group=15, items_per_group=12, density=0.5,
        # rating models learn "not my group" from low ratings: give them some to see
        noise=0.3 if caps.needs_ratings else 0.02, ratings=caps.needs_ratings, random_state=7,
    )  # fmt: skip
    if caps.personalized:
        model.fit(data)
        ids, _ = model.recommend(np.arange(data.n_users, dtype=np.int32), k=k)
        share = _own_group_share(ids, user_group, item_group)
        assert share >= 0.8, (
            f"{name}: only {share:.0%} of the recommendations come from the user's planted "
            "group (at least 80% expected): the model does not learn the structure"
        )
        if caps.folds_in:
            hist = data.csr("rating") if caps.fold_in_needs_ratings else data.csr()
            f_ids, _ = model.recommend(None, k=k, history=hist)
            f_share = _own_group_share(f_ids, user_group, item_group)
            assert f_share >= 0.8, (
                f"{name}: fold-in lists come from the user's planted group only {f_share:.0%} "
                "of the time (at least 80% expected)"
            )
    else:
        gen = np.random.default_rng(3)
        counts = np.array([40, 30, 20, 10, 5])
        users = np.concatenate([gen.choice(60, size=c, replace=False) for c in counts])
        items = np.repeat(np.arange(5), counts)
        # rating models (a bias baseline) rank by rating: the more often rated items are
        # also the better rated ones here, so both readings of "popular" agree
        stars = np.repeat(5.0 - np.arange(5), counts) if caps.needs_ratings else None
        pop = Interactions.from_arrays(users, items + 100, stars, name="popularity order")
        model.fit(pop)
        ids, _ = model.recommend(None, k=5, history=[[]], exclude=None)
        want = pop.item_ids.index(np.arange(5) + 100)
        assert np.array_equal(ids[0], want), f"{name}: lists do not follow the planted popularity"
    if isinstance(model, RatingPredictor):
        if caps.personalized:
            ratings = make_ratings(n_users=80, n_items=50, density=0.4, factors=2, noise=0.3)
        else:  # biases are all a non-personalised rating model can learn
            ratings = _planted_biases(n_users=80, n_items=50, density=0.4, noise=0.3)
        gen = np.random.default_rng(11)
        test_rows = gen.random(len(ratings)) < 0.2
        tr = ratings.subset(~test_rows)
        te = ratings.subset(test_rows)
        model.fit(tr)
        assert tr.ratings is not None and te.ratings is not None
        ok = (np.bincount(tr.users, minlength=tr.n_users)[te.users] > 0) & (
            np.bincount(tr.items, minlength=tr.n_items)[te.items] > 0
        )
        pred = model.predict(te.users[ok], te.items[ok])
        truth = te.ratings[ok]
        rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
        base = float(np.sqrt(np.mean((float(tr.ratings.mean()) - truth) ** 2)))
        assert rmse <= 0.85 * base, (
            f"{name}: held-out RMSE {rmse:.3f} on a planted low-rank matrix is not clearly "
            f"below the global mean's {base:.3f} (at most {0.85 * base:.3f} expected)"
        )


def _planted_biases(n_users: int, n_items: int, density: float, noise: float) -> Interactions:
    """Ratings ``clip(round(3 + b_u + b_i + noise), 1, 5)`` with planted user and item biases."""
    gen = np.random.default_rng(5)
    mask = gen.random((n_users, n_items)) < density
    mask[np.arange(n_users), gen.integers(0, n_items, n_users)] = True
    mask[gen.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    bu, bi = gen.normal(0, 0.7, n_users), gen.normal(0, 0.7, n_items)
    r = np.clip(np.round(3 + bu[u] + bi[i] + gen.normal(0, noise, u.size)), 1, 5)
    return Interactions.from_arrays(u, i, r, name="planted biases")


def _own_group_share(ids: np.ndarray, user_group: np.ndarray, item_group: np.ndarray) -> float:
    rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
    flat = ids.reshape(-1)
    ok = flat >= 0
    if not ok.any():
        return 0.0
    return float(np.mean(item_group[flat[ok]] == user_group[rows[ok]]))
