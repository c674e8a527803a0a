"""NCF (BCE and BPR) against iALS and EASE, and against a peer NeuMF, on ml-100k.

ml-100k, ratings >= 4 as positives (``lensrec.split.min_rating``), three protocols:

- ``last:3``: each user's last 3 positives by timestamp as test;
- ``last:3:row``: the last 3 in u.data's row order (the notebooks' protocol);
- ``warm-temporal``: a global time threshold (the 60% quantile of timestamps), test only users
  with at least 5 training and 10 test positives, on items seen in training (the NCF
  notebook's protocol).

lensrec models are fitted the way ``lensrec evaluate`` fits them (``fit_with_validation``):
NCF and iALS early-stop on a validation set carved from the training part by the split's
rule, then refit on all of it for the chosen epochs; EASE has no epochs. Every model is
scored by ``lensrec.evaluate.evaluate`` on the same test part: NDCG@10, HR@10, Recall@10,
seen items excluded. Fit seconds (validation and refit included) beside every metric.

With ``--peer`` and cornac importable (``benchmarks/setup_env.sh`` installs it; cornac is not
a lensrec dependency), cornac's NeuMF with its PyTorch backend runs on the same split (its
defaults: 8 factors, MLP 64-32-16-8, batch 256, 4 negatives, Adam 0.001, ``--peer-epochs``
epochs, no early stopping), beside lensrec NCF at its defaults and lensrec NCF with the
same architecture and batch (``factors=8, layers=3, batch_size=256``) for the same number of
epochs without validation: seconds per epoch and NDCG@10 in one run. ``--models`` picks the
lensrec rows; ``blind`` is NCF with ``check_negatives=False`` (negatives drawn blindly, as
the common notebook does).

    python benchmarks/bench_ncf.py [--splits last:3 last:3:row warm] [--seed 0]
    benchmarks/.venv/bin/python benchmarks/bench_ncf.py --splits last:3:row --models blind --peer
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from lensrec.data import load_dataset
from lensrec.evaluate import evaluate
from lensrec.models import MODELS
from lensrec.models._validation import fit_with_validation
from lensrec.split import make_split, min_rating

METRICS = ["ndcg@10", "hit_rate@10", "recall@10"]
SPLITS = {
    "last:3": "last:3",
    "last:3:row": "last:3:row",
    "warm": "warm-temporal:quantile=0.6,min_train=5,min_test=10",
}


class CornacNeuMF:
    """cornac's NeuMF (PyTorch backend) fitted on a lensrec training part, ranked over the
    same item indices (seen items excluded by ``evaluate``)."""

    def __init__(self, train: Any, epochs: int, seed: int):
        import cornac
        from cornac.data import Dataset

        triples = [(str(u), str(i), 1.0) for u, i in zip(train.users, train.items, strict=True)]
        data = Dataset.from_uir(triples, seed=seed)
        self.model = cornac.models.NeuMF(
            num_factors=8, layers=(64, 32, 16, 8), act_fn="relu", num_epochs=epochs,
            batch_size=256, num_neg=4, lr=0.001, backend="pytorch", seed=seed, verbose=False,
        )  # fmt: skip
        t0 = time.perf_counter()
        self.model.fit(data)
        self.fit_seconds = time.perf_counter() - t0
        self.epochs = epochs
        n_items = train.n_items
        # cornac's item index -> ours; items absent from cornac's map score -inf
        self.item_of = np.full(data.num_items, -1, dtype=np.int64)
        for ext, idx in data.iid_map.items():
            self.item_of[idx] = int(ext)
        self.user_of = {int(ext): idx for ext, idx in data.uid_map.items()}
        self.n_items = n_items

    def recommend(self, users: Any, k: int = 10, exclude: Any = None, **_: Any) -> Any:
        users = np.asarray(users)
        scores = np.full((users.size, self.n_items), -np.inf, dtype=np.float32)
        for r, u in enumerate(users.tolist()):
            idx = self.user_of.get(int(u))
            if idx is not None:
                scores[r, self.item_of] = np.asarray(self.model.score(idx), dtype=np.float32)
        if exclude is not None:
            rows = exclude[users]
            scores[np.repeat(np.arange(users.size), np.diff(rows.indptr)), rows.indices] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int32)
        top_scores = np.take_along_axis(scores, top, axis=1)
        top[~np.isfinite(top_scores)] = -1
        return top, top_scores


def _fit(
    name: str, params: dict[str, Any], train: Any, split: str, seed: int
) -> tuple[Any, float, dict]:
    cls = MODELS[name]
    cls.warm_up()
    model = cls(random_state=seed, **params)
    t0 = time.perf_counter()
    info = fit_with_validation(model, train, split=split, random_state=seed)
    return model, time.perf_counter() - t0, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer", action="store_true", help="add cornac's NeuMF (PyTorch backend)")
    ap.add_argument("--peer-epochs", type=int, default=10)
    ap.add_argument(
        "--models", nargs="*", default=["bce", "bpr", "als", "ease"],
        choices=["bce", "bpr", "blind", "als", "ease"],
        help="NCF BCE, NCF BPR, NCF BCE with blind negatives, iALS, EASE",
    )  # fmt: skip
    args = ap.parse_args()

    data = min_rating(load_dataset("ml-100k"), 4)
    runs: list[tuple[str, str, str, float, dict[str, float], str]] = []
    for key in args.splits:
        spec = SPLITS[key]
        sp = make_split(data, spec, random_state=args.seed)
        print(f"\n== {key} ({spec}): {len(sp.train):,} train / {len(sp.test):,} test rows, "
              f"{len(np.unique(sp.test.users))} test users", flush=True)  # fmt: skip
        choices: dict[str, tuple[str, str, dict[str, Any]]] = {
            "bce": ("NCF NeuMF BCE (defaults)", "ncf", {}),
            "bpr": ("NCF NeuMF BPR", "ncf", {"loss": "bpr"}),
            "blind": ("NCF NeuMF BCE, blind negatives", "ncf", {"check_negatives": False}),
            "als": ("iALS (defaults)", "als", {}),
            "ease": ("EASE (defaults)", "ease", {}),
        }
        models = [choices[m] for m in args.models]
        for label, name, params in models:
            model, secs, info = _fit(name, params, sp.train, spec, args.seed)
            res = evaluate(model, sp.train, sp.test, k=10, metrics=METRICS, ci=False)
            note = f"epochs {info['epochs_chosen']}" if "epochs_chosen" in info else ""
            if name == "ncf":
                per = float(np.median(model.history_["seconds"]))
                note += f", {per:.2f} s/epoch"
            runs.append((key, label, name, secs, res.metrics, note))
            print(
                f"{label}: {res.metrics['ndcg@10']:.4f} NDCG@10, {secs:.1f} s ({note})", flush=True
            )
        if args.peer:
            e = args.peer_epochs
            peer = CornacNeuMF(sp.train, e, args.seed)
            res = evaluate(peer, sp.train, sp.test, k=10, metrics=METRICS, ci=False)
            note = f"{e} epochs, {peer.fit_seconds / e:.2f} s/epoch"
            runs.append(
                (key, "cornac NeuMF (pytorch)", "peer", peer.fit_seconds, res.metrics, note)
            )
            print(f"cornac NeuMF: {res.metrics['ndcg@10']:.4f}, {note}", flush=True)
            for label, params in (
                ("lensrec NCF (defaults, fixed epochs)", {"epochs": e}),
                ("lensrec NCF as cornac (f=8, 64-32-16-8, batch 256)",
                 {"epochs": e, "factors": 8, "layers": 3, "batch_size": 256}),
            ):  # fmt: skip
                model = MODELS["ncf"](random_state=args.seed, **params)
                t0 = time.perf_counter()
                model.fit(sp.train)
                secs = time.perf_counter() - t0
                res = evaluate(model, sp.train, sp.test, k=10, metrics=METRICS, ci=False)
                note = f"{e} epochs, {secs / e:.2f} s/epoch"
                runs.append((key, label, "ncf", secs, res.metrics, note))
                print(f"{label}: {res.metrics['ndcg@10']:.4f}, {note}", flush=True)

    print(f"\n| split | model | {' | '.join(METRICS)} | fit s | notes |")
    print("|---|---|" + "---|" * len(METRICS) + "---|---|")
    for key, label, _, secs, m, note in runs:
        vals = " | ".join(f"{m[n]:.4f}" for n in METRICS)
        print(f"| {key} | {label} | {vals} | {secs:.1f} | {note} |")


if __name__ == "__main__":
    main()
