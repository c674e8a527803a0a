"""NCF: neural collaborative filtering (GMF, MLP, NeuMF) in PyTorch (He et al. 2017).

Needs the ``neural`` extra (``pip install 'lensrec[neural]'``; on a CPU-only machine install
the CPU build of torch first, see the README).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any, ClassVar, Literal, cast

import numpy as np
import scipy.sparse as sp
import torch

from .._config import seed_from
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._trainer import EpochTrainer, TrainingDivergedError
from ._validation import VALID_K, RankingValidation
from .base import Callback, Capabilities, Query, Recommender, register

__all__ = ["NCF", "negative_table", "resolve_device", "sample_negatives"]

_log = logging.getLogger(__name__)

#: seed of the fold-in negative draws: a folded-in user is a function of the history alone
FOLD_IN_SEED = 12345
#: score values (times the first MLP layer's width) computed per forward pass when ranking
_SCORE_BLOCK = 1 << 22


class DeviceName:
    """The ``device`` rule: ``"auto"`` or a torch device name (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"``, ``"xpu:0"``); whether it is usable here is checked in ``fit``."""

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and bool(
            re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", value)
        )

    def describe(self) -> str:
        return '"auto", "cpu", "cuda", "cuda:N", "mps" or "xpu[:N]"'


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; anything else as torch reads it.

    Raises :class:`ConfigError` for a device torch does not know or cannot use here.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"NCF: device {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"NCF: device {device!r} asked for, but torch sees no CUDA GPU here; "
            "use device='cpu' or 'auto'"
        )
    return dev


class _Net(torch.nn.Module):
    """GMF, MLP or NeuMF: ``logit(u, i) = h . [p_u * q_i ; MLP([p'_u ; q'_i])] + b``.

    ``factors`` is the GMF embedding size and the MLP's last layer width; the MLP tower has
    ``layers`` ReLU layers halving from ``factors * 2**layers`` inputs (the two embeddings of
    ``factors * 2**(layers-1)`` each, concatenated) down to ``factors`` (He et al.'s tower).
    """

    def __init__(self, n_users: int, n_items: int, arch: str, factors: int, layers: int):
        super().__init__()
        self.arch = arch
        self.f = factors
        self.gmf = arch in ("gmf", "neumf")
        self.mlp = arch in ("mlp", "neumf")
        out = 0
        if self.gmf:
            self.gmf_user = torch.nn.Embedding(n_users, factors)
            self.gmf_item = torch.nn.Embedding(n_items, factors)
            out += factors
        if self.mlp:
            self.e = factors * 2 ** (layers - 1)
            self.mlp_user = torch.nn.Embedding(n_users, self.e)
            self.mlp_item = torch.nn.Embedding(n_items, self.e)
            sizes = [2 * self.e] + [factors * 2 ** (layers - 1 - j) for j in range(layers)]
            self.tower = torch.nn.ModuleList(
                torch.nn.Linear(sizes[j], sizes[j + 1]) for j in range(layers)
            )
            out += factors
        self.out = torch.nn.Linear(out, 1)

    def init(self, g: torch.Generator) -> None:
        """He et al.'s initialisation, drawn from ``g``: embeddings N(0, 0.01), layers
        Glorot-uniform, the output layer uniform in ``+-sqrt(3 / fan_in)``, biases 0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif "_user" in name or "_item" in name:
                    p.normal_(0.0, 0.01, generator=g)
                elif name.startswith("out"):
                    bound = math.sqrt(3.0 / p.shape[1])
                    p.uniform_(-bound, bound, generator=g)
                else:
                    bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                    p.uniform_(-bound, bound, generator=g)

    def user_parts(self, users: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The users' GMF and MLP embeddings (None for a tower the architecture lacks)."""
        return (
            self.gmf_user(users) if self.gmf else None,
            self.mlp_user(users) if self.mlp else None,
        )

    def pairs(
        self,
        gu: torch.Tensor | None,
        mu: torch.Tensor | None,
        items: torch.Tensor,
        dropout: float = 0.0,
        g: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Logits of aligned (user embedding, item) pairs; ``dropout`` on the MLP's hidden
        layers, its masks drawn from ``g`` (no global random state)."""
        parts = []
        if self.gmf:
            assert gu is not None
            parts.append(gu * self.gmf_item(items))
        if self.mlp:
            assert mu is not None
            z = torch.cat([mu, self.mlp_item(items)], dim=-1)
            for lin in self.tower:
                z = torch.relu(lin(z))
                if dropout > 0.0:
                    keep = torch.rand(z.shape, generator=g, device=z.device) >= dropout
                    z = z * keep / (1.0 - dropout)
            parts.append(z)
        return self.out(torch.cat(parts, dim=-1)).squeeze(-1)

    def scores(
        self, gu: torch.Tensor | None, mu: torch.Tensor | None, items: torch.Tensor | None
    ) -> torch.Tensor:
        """Logits ``[B, N]`` of B users (their embeddings) against N items (all when None)
        in one forward pass: the first MLP layer splits into a user part and an item part,
        each computed once, and the pairs are their broadcast sum."""
        h = self.out.weight[0]
        n = (gu if gu is not None else mu).shape[0]  # type: ignore[union-attr]
        s: torch.Tensor = self.out.bias.expand(n, 1)
        off = 0
        if self.gmf:
            assert gu is not None
            q = self.gmf_item.weight if items is None else self.gmf_item.weight[items]
            s = s + (gu * h[: self.f]) @ q.T
            off = self.f
        if self.mlp:
            q = self.mlp_item.weight if items is None else self.mlp_item.weight[items]
            assert mu is not None
            first = cast(torch.nn.Linear, self.tower[0])
            a = mu @ first.weight[:, : self.e].T + first.bias
            c = q @ first.weight[:, self.e :].T
            z = torch.relu(a[:, None, :] + c[None, :, :])
            for lin in self.tower[1:]:
                z = torch.relu(lin(z))
            s = s + z @ h[off:]
        return s


@register("ncf", extra="neural")
class NCF(Recommender):
    """Neural collaborative filtering: GMF, MLP or NeuMF, trained on sampled negatives.

    He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering" (WWW 2017). A score is
    ``h . [p_u * q_i ; MLP([p'_u ; q'_i])] + b``: the generalised matrix factorisation
    (GMF) part, the multi-layer perceptron (MLP) part, or both (NeuMF). Each epoch pairs
    every training interaction with ``negatives`` items the user does not have, drawn
    uniformly and redrawn while they are one of the user's positives (``check_negatives``;
    the common notebook draws blindly), and takes Adam steps (``weight_decay`` as L2) on
    mini-batches of either the pointwise binary cross-entropy (``loss="bce"``: the positive
    labelled 1, each negative 0) or the pairwise BPR loss (``loss="bpr"``: ``-ln
    sigmoid(s_ui - s_uj)`` for each negative ``j``). Batches are index tensors built on the
    device each epoch; nothing per sample runs in Python.

    With ``pretrain=True`` (NeuMF only) a GMF and an MLP are trained first and NeuMF starts
    from their weights, the output layer halving each (He et al., section 3.4.1).

    Ranking a batch of users against the catalogue is one forward pass per block of users.
    A user the model never saw is folded in: a fresh (zero) user embedding is fitted by
    ``fold_in_epochs`` Adam steps on their history and sampled negatives, everything else
    frozen; the negatives come from a fixed seed, so the result depends on the history
    alone.

    Parameters
    ----------
    architecture : {"gmf", "mlp", "neumf"}, default "neumf"
    loss : {"bce", "bpr"}, default "bce"
        Pointwise binary cross-entropy, or pairwise BPR.
    factors : int, default 32
        GMF embedding size and the MLP's last layer width (He et al.'s "predictive
        factors").
    layers : int, default 3
        MLP layers; the MLP embeddings have ``factors * 2**(layers-1)`` dimensions each.
    negatives : int, default 4
        Sampled negatives per training interaction and epoch.
    check_negatives : bool, default True
        Redraw a negative while it is one of the user's positives (up to 20 times).
    learning_rate : float, default 0.001
        Adam's step size.
    weight_decay : float, default 0.0
        Adam's L2 weight decay, on every parameter.
    dropout : float in [0, 1), default 0.0
        Dropout on the MLP's hidden layers during training.
    batch_size : int or "auto", default "auto"
        Training examples (BCE) or pairs (BPR) per Adam step. ``"auto"``: 1024, or fewer
        on small data so that an epoch takes at least 32 steps (at least 16 per batch).
    epochs : int, default 20
        Epochs; fewer when early stopping ends training.
    patience : int, default 3
        With a ``valid`` set passed to ``fit``: stop after this many epochs without a better
        validation NDCG@10 and keep the best epoch's weights.
    pretrain : bool, default False
        NeuMF only: train GMF and MLP first (``epochs`` each, early-stopped alike) and start
        from their weights.
    fold_in_epochs : int, default 30
        Adam steps on a new user's embedding.
    fold_in_learning_rate : float, default 0.05
        Their step size.
    device : str, default "auto"
        ``"auto"``: CUDA when available, else the CPU; or any torch device (``"cpu"``,
        ``"cuda:1"``). The fitted weights are kept (and saved) on the CPU.
    random_state : None, int or numpy Generator
        Seeds the initialisation, the negatives, the batch order and dropout (torch
        generators of the model's own; no global state). On the CPU the same seed and
        thread count give the same model; CUDA kernels may differ in the last bits.

    Attributes
    ----------
    weights_ : dict of str to torch.Tensor
        The network's ``state_dict`` (CPU tensors), saved as tensors in the model file.
    history_ : dict of lists of float
        Per epoch: ``"train_loss"``, ``"valid_ndcg@10"`` when validating, ``"seconds"``.
    best_epoch_ : int
        Epoch whose weights were kept (the last one without validation).

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = NCF(factors=8, epochs=10, random_state=0).fit(data)
    >>> ids, _ = model.recommend([0], k=3)
    >>> bool((item_group[ids[0]] == 0).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        folds_in=True, epoch_trained=True, uses_validation=True, extra="neural"
    )
    #: runs refit on all training rows for the epochs chosen on the carved validation set
    refit_after_validation: ClassVar[bool] = True

    architecture: Annotated[Literal["gmf", "mlp", "neumf"], Search()] = "neumf"
    loss: Annotated[Literal["bce", "bpr"], Search()] = "bce"
    factors: Annotated[int, Range(1), Search(8, 128, log=True)] = 16
    layers: Annotated[int, Range(1), Search(1, 4)] = 3
    negatives: Annotated[int, Range(1), Search(1, 10)] = 4
    check_negatives: bool = True
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(1e-4, 1e-2, log=True)] = 0.001
    weight_decay: Annotated[float, Range(0.0), Search(1e-8, 1e-3, log=True)] = 1e-5
    dropout: Annotated[float, Range(0.0, 1.0, high_open=True), Search(0.0, 0.5)] = 0.0
    batch_size: Annotated[int | Literal["auto"], Range(1), Search(256, 8192, log=True)] = "auto"
    epochs: Annotated[int, Range(1), Search(5, 50)] = 30
    patience: Annotated[int, Range(1)] = 3
    pretrain: bool = False
    fold_in_epochs: Annotated[int, Range(1)] = 30
    fold_in_learning_rate: Annotated[float, Range(0.0, low_open=True)] = 0.05
    device: Annotated[str, DeviceName()] = "auto"
    random_state: RandomState = None

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """The epoch's example tensors, the weights with Adam's two moments and a snapshot,
        and one scoring block."""
        f, layers = int(self.factors), int(self.layers)
        e = f * 2 ** (layers - 1)
        weights = 4 * (n_users + n_items) * (f + e)
        per_epoch = 8 * 3 * nnz * (1 + int(self.negatives))
        return int(12 * nnz + per_epoch + 4 * weights + 4 * _SCORE_BLOCK)

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
        if self.pretrain and self.architecture != "neumf":
            raise ConfigError(
                f"NCF: pretrain=True needs architecture='neumf' (GMF and MLP are joined), got "
                f"{self.architecture!r}; set pretrain=False"
            )
        device = resolve_device(str(self.device))
        x = self.user_items_
        n_users, n_items = x.shape
        seed = seed_from(gen)
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        init = torch.Generator()  # weights are drawn on the CPU: the same on every device
        init.manual_seed(seed)
        users = torch.from_numpy(np.repeat(np.arange(n_users, dtype=np.int64), np.diff(x.indptr)))
        items = torch.from_numpy(x.indices.astype(np.int64))
        pos_u, pos_i = users.to(device), items.to(device)
        indptr = torch.from_numpy(np.asarray(x.indptr, dtype=np.int64)).to(device)
        table = torch.from_numpy(negative_table(x.indptr, x.indices, n_items)).to(device)
        keys = (indptr, table)
        check = None
        if valid is not None and len(valid):
            check = RankingValidation(x, valid)
            if not len(check):
                check = None

        def new(arch: str) -> _Net:
            net = _Net(n_users, n_items, arch, int(self.factors), int(self.layers))
            net.init(init)
            return net.to(device)

        if self.pretrain:
            gmf, _ = self._train(new("gmf"), pos_u, pos_i, keys, g, check, False, None)
            mlp, _ = self._train(new("mlp"), pos_u, pos_i, keys, g, check, False, None)
            net = new("neumf")
            with torch.no_grad():
                for part in ("gmf_user", "gmf_item"):
                    getattr(net, part).weight.copy_(getattr(gmf, part).weight)
                for part in ("mlp_user", "mlp_item"):
                    getattr(net, part).weight.copy_(getattr(mlp, part).weight)
                for mine, theirs in zip(net.tower, mlp.tower, strict=True):
                    mine.load_state_dict(theirs.state_dict())
                net.out.weight.copy_(0.5 * torch.cat([gmf.out.weight, mlp.out.weight], dim=1))
                net.out.bias.copy_(0.5 * (gmf.out.bias + mlp.out.bias))
        else:
            net = new(str(self.architecture))
        net, log = self._train(net, pos_u, pos_i, keys, g, check, show_progress, callback)
        state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}
        for k, v in state.items():
            if not torch.isfinite(v).all():
                raise TrainingDivergedError(
                    f"NCF: training diverged ({k} has non-finite values); lower learning_rate"
                )
        self.weights_ = state
        self.history_ = {key: list(v) for key, v in log.history.items()}
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    def _train(
        self,
        net: _Net,
        pos_u: torch.Tensor,
        pos_i: torch.Tensor,
        keys: tuple[torch.Tensor, torch.Tensor],
        g: torch.Generator,
        check: RankingValidation | None,
        show_progress: bool,
        callback: Callback | None,
    ) -> tuple[_Net, Any]:
        """Train ``net`` for up to ``epochs`` epochs; returns the best (or last) weights."""
        n_items = net.gmf_item.num_embeddings if net.gmf else net.mlp_item.num_embeddings
        neg = int(self.negatives)
        bpr = self.loss == "bpr"
        n_examples = pos_u.numel() * (neg if bpr else 1 + neg)
        bs = (
            min(1024, max(16, n_examples // 32))
            if self.batch_size == "auto"
            else int(self.batch_size)
        )
        dropout = float(self.dropout)
        opt = torch.optim.Adam(
            net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.weight_decay)
        )
        u_rep = pos_u.repeat(neg)
        ones = torch.ones(pos_u.numel(), device=pos_u.device)
        zeros = torch.zeros(u_rep.numel(), device=pos_u.device)
        i_rep = pos_i.repeat(neg) if bpr else pos_i
        labels = torch.cat([ones, zeros])
        all_u = torch.cat([pos_u, u_rep])

        def step(epoch: int) -> dict[str, float]:
            net.train()
            j = sample_negatives(u_rep, *keys, n_items, g, bool(self.check_negatives))
            if bpr:
                us, ii, jj = u_rep, i_rep, j
            else:
                us, ii, jj = all_u, torch.cat([pos_i, j]), j
            n = us.numel()
            perm = torch.randperm(n, generator=g, device=us.device)
            total = torch.zeros((), device=us.device)
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                gu, mu = net.user_parts(us[idx])
                if bpr:
                    diff = net.pairs(gu, mu, ii[idx], dropout, g) - net.pairs(
                        gu, mu, jj[idx], dropout, g
                    )
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                else:
                    logits = net.pairs(gu, mu, ii[idx], dropout, g)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * idx.numel()
            return {"train_loss": float(total) / max(n, 1)}

        validate = None
        if check is not None:

            def validate() -> float:
                net.eval()
                return check(lambda users: _score_users(net, users))

        def snapshot() -> dict[str, torch.Tensor]:
            return {k: v.detach().clone() for k, v in net.state_dict().items()}

        trainer: EpochTrainer[dict[str, torch.Tensor]] = EpochTrainer(
            f"NCF ({net.arch})",
            epochs=int(self.epochs),
            patience=int(self.patience),
            mode="max",
            metric=f"valid_ndcg@{VALID_K}",
            hint="lower learning_rate or raise weight_decay",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, snapshot)
        if best is not None:
            net.load_state_dict(best)
        net.eval()
        return net, log

    # --- derived state and scoring -------------------------------------------------------
    def _net(self) -> _Net:
        return cast(_Net, self._derived["net"])

    def _prepare_model(self) -> None:
        w = self.weights_
        arch = "neumf" if "gmf_user.weight" in w and "mlp_user.weight" in w else (
            "gmf" if "gmf_user.weight" in w else "mlp"
        )  # fmt: skip
        factors = int(w["out.weight"].shape[1]) // (2 if arch == "neumf" else 1)
        layers = sum(1 for k in w if k.startswith("tower.") and k.endswith(".weight"))
        n_users = int(self.n_users)
        net = _Net(n_users, self.n_items, arch, factors, max(layers, 1))
        try:
            net.load_state_dict({k: v.float() for k, v in w.items()})
        except RuntimeError as exc:
            from ..errors import ModelFormatError

            raise ModelFormatError(
                f"NCF: the saved weights do not fit the network ({exc})"
            ) from None
        net = net.to(resolve_device(str(self.device))).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self._derived["net"] = net

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        net = self._net()
        dev = net.out.weight.device
        known = query.known
        with torch.no_grad():
            idx = torch.from_numpy(np.maximum(query.users, 0).astype(np.int64)).to(dev)
            gu, mu = net.user_parts(idx)
        if not known.all():
            assert query.history is not None  # unknown users come with a history
            fg, fm = self._fold_in_embeddings(query.history[~known])
            rows = torch.from_numpy(np.flatnonzero(~known)).to(dev)
            if gu is not None and fg is not None:
                gu[rows] = fg
            if mu is not None and fm is not None:
                mu[rows] = fm
        it = None if items is None else torch.from_numpy(np.asarray(items, dtype=np.int64)).to(dev)
        return _score_embeddings(net, gu, mu, it, len(query))

    def _similarity_vectors(self) -> np.ndarray:
        """GMF item embeddings weighted by the output layer, beside the MLP item embeddings."""
        w = self.weights_
        parts = []
        if "gmf_item.weight" in w:
            q = w["gmf_item.weight"].float()
            parts.append((q * w["out.weight"][0, : q.shape[1]].float()).numpy())
        if "mlp_item.weight" in w:
            parts.append(w["mlp_item.weight"].float().numpy())
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    # --- fold-in -------------------------------------------------------------------------
    def _fold_in_embeddings(
        self, history: sp.csr_matrix
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Fresh user embeddings fitted row by row on the histories, the network frozen."""
        net = self._net()
        dev = net.out.weight.device
        h = sp.csr_matrix(history)
        h.sort_indices()
        m = h.shape[0]
        gu = torch.zeros((m, net.f), device=dev) if net.gmf else None
        mu = torch.zeros((m, net.e), device=dev) if net.mlp else None
        for r in range(m):
            row = h.indices[h.indptr[r] : h.indptr[r + 1]].astype(np.int64)
            if row.size == 0:
                continue
            g1, m1 = self._fold_in_row(net, row)
            if gu is not None:
                gu[r] = g1
            if mu is not None:
                mu[r] = m1
        return gu, mu

    def _fold_in_row(self, net: _Net, row: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        dev = net.out.weight.device
        n_items = self.n_items
        gen = np.random.default_rng(FOLD_IN_SEED)
        neg = int(self.negatives)
        g = torch.zeros((1, net.f), device=dev, requires_grad=True) if net.gmf else None
        e = torch.zeros((1, net.e), device=dev, requires_grad=True) if net.mlp else None
        params = [p for p in (g, e) if p is not None]
        opt = torch.optim.Adam(params, lr=float(self.fold_in_learning_rate))
        pos = torch.from_numpy(row).to(dev)
        positives = np.unique(row)
        adjusted = positives - np.arange(positives.size)
        free = n_items - positives.size
        bpr = self.loss == "bpr"
        with torch.enable_grad():
            for _ in range(int(self.fold_in_epochs)):
                if self.check_negatives and free > 0:  # as sample_negatives, for one user
                    r = gen.integers(0, free, size=row.size * neg)
                    j = r + np.searchsorted(adjusted, r, side="right")
                else:
                    j = gen.integers(0, n_items, size=row.size * neg)
                jt = torch.from_numpy(j).to(dev)
                pi = pos.repeat(neg) if bpr else torch.cat([pos, jt])
                n = pi.numel() if not bpr else jt.numel()
                gu = g.expand(n, -1) if g is not None else None
                mu = e.expand(n, -1) if e is not None else None
                if bpr:
                    diff = net.pairs(gu, mu, pi) - net.pairs(gu, mu, jt)
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                else:
                    y = torch.cat(
                        [torch.ones(row.size, device=dev), torch.zeros(jt.numel(), device=dev)]
                    )
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        net.pairs(gu, mu, pi), y
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        zero = torch.zeros(0, device=dev)
        return (
            g.detach()[0] if g is not None else zero,
            e.detach()[0] if e is not None else zero,
        )


def negative_table(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> np.ndarray:
    """What :func:`sample_negatives` searches: for each user's sorted positives ``p_0 < p_1 <
    ...`` the values ``u * n_items + p_k - k`` (sorted overall; ``p_k - k`` counts the
    non-positives below ``p_k``)."""
    counts = np.diff(indptr).astype(np.int64)
    users = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    local = np.arange(indices.size, dtype=np.int64) - np.repeat(
        indptr[:-1].astype(np.int64), counts
    )
    return users * n_items + indices.astype(np.int64) - local


def sample_negatives(
    users: torch.Tensor,
    indptr: torch.Tensor,
    table: torch.Tensor,
    n_items: int,
    g: torch.Generator,
    check: bool,
) -> torch.Tensor:
    """One item per user of ``users``: uniform over the items the user does not have when
    ``check`` (exactly, no redraws: the ``r``-th non-positive item is ``r`` plus the number
    of positives whose :func:`negative_table` value is at most ``r``), else uniform over
    all items (the common notebook's blind draw). A user who has every item gets any item.
    All on the users' device."""
    if not check:
        return torch.randint(0, n_items, users.shape, generator=g, device=users.device)
    start = indptr[users]
    free = n_items - (indptr[users + 1] - start)
    u = torch.rand(users.shape, generator=g, device=users.device, dtype=torch.float64)
    r = torch.minimum((u * free.clamp(min=1)).long(), (free - 1).clamp(min=0))
    below = torch.searchsorted(table, users * n_items + r, right=True) - start
    return torch.clamp(r + below, max=n_items - 1)


def _score_embeddings(
    net: _Net,
    gu: torch.Tensor | None,
    mu: torch.Tensor | None,
    items: torch.Tensor | None,
    n: int,
) -> np.ndarray:
    """Float32 numpy scores ``[n, N]`` in blocks of users that keep the MLP's broadcast
    activations within :data:`_SCORE_BLOCK` values."""
    n_items = int(
        (net.gmf_item.num_embeddings if net.gmf else net.mlp_item.num_embeddings)
        if items is None
        else items.numel()
    )
    width = int(cast(torch.nn.Linear, net.tower[0]).out_features) if net.mlp else 1
    step = max(1, _SCORE_BLOCK // max(n_items * width, 1))
    out = np.empty((n, n_items), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, n, step):
            b = min(n, a + step)
            s = net.scores(None if gu is None else gu[a:b], None if mu is None else mu[a:b], items)
            out[a:b] = s.float().cpu().numpy()
    return out


def _score_users(net: _Net, users: np.ndarray) -> np.ndarray:
    dev = net.out.weight.device
    with torch.no_grad():
        gu, mu = net.user_parts(torch.from_numpy(np.asarray(users, dtype=np.int64)).to(dev))
    return _score_embeddings(net, gu, mu, None, len(users))
