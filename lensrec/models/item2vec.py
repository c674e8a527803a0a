"""item2vec: item embeddings from users' item sequences by gensim's word2vec (Barkan &
Koenigstein 2016).

Needs the ``item2vec`` extra (``pip install 'lensrec[item2vec]'``, which brings gensim).
"""

from __future__ import annotations

import logging
import zlib
from typing import Annotated, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from gensim.models import Word2Vec

from .._config import seed_from
from ..data.interactions import Interactions
from ..types import IndexArray, RandomState
from ._params import Range, Search
from .base import Callback, Capabilities, Query, Recommender, register

__all__ = ["Item2Vec", "user_sentences"]

_log = logging.getLogger(__name__)

#: the score of an item outside the vocabulary (below ``min_count``): below every real score,
#: so it is only ever listed when nothing else is left
OUT_OF_VOCABULARY = np.float32(-1e6)


def _token_hash(token: str) -> int:
    """gensim seeds each word's initial vector with ``hashfxn(word + str(seed))``; Python's
    ``hash`` of a str changes from process to process, CRC-32 does not."""
    return zlib.crc32(token.encode("utf-8"))


def user_sentences(train: Interactions, order: Literal["time", "row"]) -> list[list[str]]:
    """Each user's items (as item-index strings) in time order (ties: row order) or in row
    order; users without interactions give no sentence."""
    users = train.users
    if order == "time" and train.timestamps is not None:
        rows = np.lexsort((np.arange(len(train)), train.timestamps, users))
    else:
        rows = np.argsort(users, kind="stable")
    tokens = train.items[rows].astype(str)
    bounds = np.cumsum(np.bincount(users, minlength=train.n_users))
    return [list(s) for s in np.split(tokens, bounds[:-1]) if s.size]


@register("item2vec", extra="item2vec")
class Item2Vec(Recommender):
    """item2vec: word2vec over each user's items, scored from the user's history.

    Barkan & Koenigstein, "Item2Vec: Neural Item Embedding for Collaborative Filtering"
    (MLSP 2016), on gensim's ``Word2Vec`` (Mikolov et al. 2013): a user's items, in time
    order (``order``), are a sentence; skip-gram or CBOW with negative sampling learns an
    input vector and an output vector per item seen at least ``min_count`` times.

    A user (known, or given by a history) is scored from their history, never from a
    learned user vector, in one of two ways (``scoring``):

    - ``"output"``: the mean of the history's input vectors dotted with every item's output
      vector, the ranking of gensim's ``predict_output_word`` with the whole history as
      context (the item2vec notebooks' recommender);
    - ``"mean"``: the mean of the history's unit input vectors dotted with every item's unit
      input vector (cosine to the mean of the history).

    Either way the model is a vector model, ranked through the retrieval index. Items below
    ``min_count`` have no vectors: they score below every other item, and a history made
    only of them (or empty) goes down the fallback chain (popularity), flagged.

    Parameters
    ----------
    factors : int, default 64
        Vector size.
    architecture : {"skip-gram", "cbow"}, default "cbow"
        CBOW predicts an item from the mean of its context's vectors, which is exactly how
        ``scoring="output"`` ranks (the mean of the history against every output vector);
        with the whole history as the window it beat skip-gram by 0.06 HR@10 on validation
        (``benchmarks/README.md``).
    window : int or "all", default "all"
        Context window (items on each side). ``"all"``: the longest history, so the context
        is (up to gensim's random window shrinking) the user's whole history: a history is a
        set more than a sequence. Skip-gram's cost grows with the window times the history
        length: give it a number (the item2vec notebook: 5).
    negatives : int, default 16
        Negative samples per positive.
    ns_exponent : float, default -0.5
        Exponent of the negative-sampling distribution over item counts (word2vec: 0.75;
        negative values favour rare items as negatives, which Caselles-Dupre et al. 2018
        found better for recommendation; -0.5 was best on validation here, 0.75 far worse).
    min_count : int, default 3
        Items with fewer training interactions get no vector.
    epochs : int, default 50
        Passes over the sentences.
    learning_rate : float, default 0.025
        Initial learning rate (gensim's ``alpha``), decayed linearly to ``0.0001``.
    subsample : float or "auto", default "auto"
        gensim's ``sample``: occurrences of items whose share of all training interactions
        is above it are randomly dropped (more often the more frequent the item). ``"auto"``:
        ``1.15 / n`` for ``n`` items in the vocabulary, i.e. items more than 1.15 times as
        frequent as the average one are thinned. On ml-100k (about 1,150 items with 3
        interactions or more) that is gensim's default 0.001 (with skip-gram it beat 0 by
        12% HR@10 on validation; at the CBOW defaults 0 is within seed noise of it,
        ``benchmarks/README.md``); on a small catalogue a fixed 0.001 thins every item and
        the vectors learn little.
    order : {"time", "row"}, default "time"
        Sentence order: by timestamp (ties: row order; row order without timestamps), or the
        file's row order (for ``:row`` splits: ``--set order=row``).
    scoring : {"output", "mean"}, default "output"
        How a history becomes scores (above).
    workers : int, default 1
        gensim worker threads. Only one worker is repeatable under a seed; more train
        faster (about 1.6x with 2 on ml-100k) but differ from run to run.
    random_state : None, int or numpy Generator
        Seeds gensim (its ``seed``; each item's initial vector is seeded by a CRC-32 of its
        token, not Python's ``hash``, so runs repeat across processes with one worker).

    Attributes
    ----------
    item_vectors_ : float32 [n_items, factors]
        Input vectors (zeros outside the vocabulary).
    output_vectors_ : float32 [n_items, factors]
        Output (negative-sampling) vectors (zeros outside the vocabulary).
    in_vocabulary_ : bool [n_items]
        Items with vectors (at least ``min_count`` training interactions).

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = Item2Vec(factors=16, epochs=20, random_state=0).fit(data)
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> bool((item_group[ids[0]] == item_group[0]).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        folds_in=True, uses_history=True, extra="item2vec"
    )

    factors: Annotated[int, Range(1), Search(16, 256, log=True)] = 64
    architecture: Annotated[Literal["skip-gram", "cbow"], Search()] = "cbow"
    window: Annotated[int | Literal["all"], Range(1), Search(2, 20, log=True)] = "all"
    negatives: Annotated[int, Range(1), Search(2, 32, log=True)] = 16
    ns_exponent: Annotated[float, Search(-1.0, 1.0)] = -0.5
    min_count: Annotated[int, Range(1), Search(1, 10)] = 3
    epochs: Annotated[int, Range(1), Search(5, 100, log=True)] = 50
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.005, 0.1, log=True)] = 0.025
    subsample: Annotated[float | Literal["auto"], Range(0.0), Search(1e-5, 1e-2, log=True)] = "auto"
    order: Literal["time", "row"] = "time"
    scoring: Annotated[Literal["output", "mean"], Search()] = "output"
    workers: Annotated[int, Range(1)] = 1
    random_state: RandomState = None

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        sentences = user_sentences(train, self.order)
        n_items, f = train.n_items, int(self.factors)
        counts = np.bincount(train.items, minlength=n_items)
        if not (counts >= int(self.min_count)).any():
            from ..errors import ConfigError

            raise ConfigError(
                f"Item2Vec: no item has min_count={self.min_count} interactions (the most is "
                f"{int(counts.max())}); lower min_count"
            )
        n_vocab = int((counts >= int(self.min_count)).sum())
        sample = 1.15 / n_vocab if self.subsample == "auto" else float(self.subsample)
        window = max(map(len, sentences)) if self.window == "all" else int(self.window)
        w2v = Word2Vec(
            sentences=sentences,
            vector_size=f,
            window=window,
            min_count=int(self.min_count),
            sg=1 if self.architecture == "skip-gram" else 0,
            hs=0,
            negative=int(self.negatives),
            ns_exponent=float(self.ns_exponent),
            epochs=int(self.epochs),
            alpha=float(self.learning_rate),
            sample=sample,
            seed=seed_from(gen),
            workers=int(self.workers),
            hashfxn=_token_hash,
            compute_loss=False,
        )
        vocab = np.array([int(t) for t in w2v.wv.index_to_key], dtype=np.int64)
        inp = np.zeros((n_items, f), dtype=np.float32)
        out = np.zeros((n_items, f), dtype=np.float32)
        inp[vocab] = w2v.wv.vectors
        out[vocab] = w2v.syn1neg
        known = np.zeros(n_items, dtype=bool)
        known[vocab] = True
        self.item_vectors_ = inp
        self.output_vectors_ = out
        self.in_vocabulary_ = known
        _log.debug("Item2Vec: %d of %d items in the vocabulary", vocab.size, n_items)

    # --- scoring: a vector model over [history mean, 1] . [item vector, 0 or -1e6] ----------
    def _unit_input(self) -> np.ndarray:
        v = self.item_vectors_
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return (v / norms[:, None]).astype(np.float32)

    def _item_vectors(self) -> np.ndarray:
        side = self.output_vectors_ if self.scoring == "output" else self._unit_input()
        offset = np.where(self.in_vocabulary_, np.float32(0.0), OUT_OF_VOCABULARY)
        return np.concatenate([side, offset[:, None].astype(np.float32)], axis=1)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_vectors_

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """``[mean of the history's (unit, for "mean") input vectors, 1]``; items outside
        the vocabulary do not count (a row with none gives zeros: the fallback answers it)."""
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        h.data[:] = 1.0
        h = sp.csr_matrix(h @ sp.diags(self.in_vocabulary_.astype(np.float32)))
        n = np.asarray(h.sum(axis=1)).reshape(-1)
        v = self._cached("history_vectors", self._history_side)
        mean = np.asarray(h @ v, dtype=np.float32) / np.maximum(n, 1)[:, None].astype(np.float32)
        out = np.ones((h.shape[0], v.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = mean
        return out

    def _history_side(self) -> np.ndarray:
        return self.item_vectors_ if self.scoring == "output" else self._unit_input()

    def _prepare_model(self) -> None:
        self._cached("history_vectors", self._history_side)

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        return self._fold_in(self.user_items_[users])

    def _unusable(self, query: Query) -> np.ndarray:
        """Rows whose history (a known user's: their training rows) holds no item with a
        vector: the fallback chain answers them."""
        known = query.known
        rows = np.zeros(len(query), dtype=np.int64)
        if known.any():
            seen = self.user_items_[query.users[known]]
            rows[known] = (seen @ self.in_vocabulary_.astype(np.float32) > 0).astype(np.int64)
        if (~known).any() and query.history is not None:
            h = query.history[~known]
            rows[~known] = (h.sign() @ self.in_vocabulary_.astype(np.float32) > 0).astype(np.int64)
        return rows == 0
