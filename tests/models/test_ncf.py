"""NCF: sampling, the one-pass scoring, determinism, parameters, fold-in, early stopping,
saving bf16 weights, devices."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="NCF needs the 'neural' extra (torch)")

from lensrec.data.planted import make_blocks  # noqa: E402
from lensrec.errors import ConfigError  # noqa: E402
from lensrec.models import NCF, load  # noqa: E402
from lensrec.models._validation import RankingValidation  # noqa: E402
from lensrec.models.ncf import (  # noqa: E402
    _Net,
    negative_table,
    resolve_device,
    sample_negatives,
)
from lensrec.split import carve_validation  # noqa: E402

FAST = {"factors": 4, "layers": 2, "epochs": 2, "fold_in_epochs": 3}


@pytest.fixture(scope="module")
def blocks():
    return make_blocks(n_groups=3, users_per_group=10, items_per_group=8, density=0.5,
                       noise=0.02, random_state=3)  # fmt: skip


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "1")


def _weights(model: NCF) -> dict[str, np.ndarray]:
    return {k: v.float().numpy() for k, v in model.weights_.items()}


def test_checked_negatives_are_uniform_over_the_non_positives():
    # user 0 has items 0..7 of 10, user 1 has item 9 only, user 2 has all 10 items
    pos = {0: list(range(8)), 1: [9], 2: list(range(10))}
    indptr = np.array([0, 8, 9, 19])
    indices = np.array(pos[0] + pos[1] + pos[2])
    table = torch.from_numpy(negative_table(indptr, indices, 10))
    users = torch.tensor([0] * 4000 + [1] * 9000 + [2] * 10)
    g = torch.Generator().manual_seed(0)
    j = sample_negatives(users, torch.from_numpy(indptr), table, 10, g, check=True)
    got0, got1 = j[:4000].numpy(), j[4000:13000].numpy()
    assert set(got0.tolist()) == {8, 9} and set(got1.tolist()) == set(range(9))
    # uniform: each allowed item about equally often (binomial sd ~ 32 and ~ 28)
    assert np.abs(np.bincount(got0, minlength=10)[8:] - 2000).max() < 150
    assert np.abs(np.bincount(got1, minlength=10)[:9] - 1000).max() < 120
    assert ((j[13000:] >= 0) & (j[13000:] < 10)).all()  # no item left: any item
    blind = sample_negatives(users[:4000], torch.from_numpy(indptr), table, 10,
                             torch.Generator().manual_seed(0), check=False)  # fmt: skip
    assert np.isin(blind.numpy(), pos[0]).mean() > 0.7  # ~0.8 expected


@pytest.mark.parametrize("arch", ["gmf", "mlp", "neumf"])
def test_one_pass_scores_equal_pairwise_logits(arch):
    """The ranking pass (first MLP layer split into user and item parts, broadcast) gives
    the logits of the plain pairwise forward pass."""
    net = _Net(5, 7, arch, 4, 3)
    net.init(torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in net.parameters():  # non-zero biases too
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
        users = torch.arange(5)
        gu, mu = net.user_parts(users)
        block = net.scores(gu, mu, None)
        uu, ii = torch.meshgrid(users, torch.arange(7), indexing="ij")
        gp, mp = net.user_parts(uu.reshape(-1))
        pairs = net.pairs(gp, mp, ii.reshape(-1)).reshape(5, 7)
        some = net.scores(
            None if gu is None else gu[[2]], None if mu is None else mu[[2]], torch.tensor([3, 6])
        )
        # by hand, in numpy, for user 2 and item 3: h . [p*q ; MLP([p';q'])] + b
        h, b = net.out.weight[0].numpy(), float(net.out.bias[0])
        parts = []
        if net.gmf:
            parts.append(net.gmf_user.weight[2].numpy() * net.gmf_item.weight[3].numpy())
        if net.mlp:
            z = np.concatenate([net.mlp_user.weight[2].numpy(), net.mlp_item.weight[3].numpy()])
            for lin in net.tower:
                z = np.maximum(lin.weight.numpy() @ z + lin.bias.numpy(), 0.0)
            parts.append(z)
        hand = float(h @ np.concatenate(parts) + b)
    torch.testing.assert_close(block, pairs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(some[0], pairs[2, [3, 6]], rtol=1e-5, atol=1e-5)
    assert float(block[2, 3]) == pytest.approx(hand, rel=1e-5, abs=1e-5)
    assert block.std() > 0.01


def test_one_thread_is_repeatable(blocks, one_thread):
    data = blocks[0]
    a = NCF(**FAST, random_state=5).fit(data)
    b = NCF(**FAST, random_state=5).fit(data)
    c = NCF(**FAST, random_state=6).fit(data)
    for k, v in _weights(a).items():
        np.testing.assert_array_equal(v, _weights(b)[k])
    assert any(not np.array_equal(v, _weights(c)[k]) for k, v in _weights(a).items())


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("architecture", "gmf"),
        ("loss", "bpr"),
        ("factors", 6),
        ("layers", 1),
        ("negatives", 2),
        ("check_negatives", False),
        ("learning_rate", 0.01),
        ("weight_decay", 0.01),
        ("dropout", 0.3),
        ("batch_size", 64),
        ("epochs", 3),
        ("pretrain", True),
        ("random_state", 1),
    ],
)
def test_each_parameter_changes_the_result(blocks, one_thread, param, value):
    data = blocks[0]
    base = {**FAST, "random_state": 0}
    a = NCF(**base).fit(data)
    b = NCF(**{**base, param: value}).fit(data)
    users = np.arange(data.n_users, dtype=np.int32)
    sa = a._score(a._make_query(users, None), None)
    sb = b._score(b._make_query(users, None), None)
    assert np.abs(sa - sb).max() > 1e-4, param


@pytest.mark.parametrize(
    ("param", "value"), [("fold_in_epochs", 8), ("fold_in_learning_rate", 0.2)]
)
def test_fold_in_parameters_change_the_fold_in(blocks, param, value):
    data = blocks[0]
    a = NCF(**FAST, random_state=0).fit(data)
    b = NCF(**{**FAST, param: value}, random_state=0).fit(data)
    hist = data.csr()[:3]
    ga, ma = a._fold_in_embeddings(hist)
    gb, mb = b._fold_in_embeddings(hist)
    assert (ga - gb).abs().max() > 1e-4 and (ma - mb).abs().max() > 1e-4


def test_fold_in_depends_on_the_history_alone_and_freezes_the_network(blocks):
    data = blocks[0]
    model = NCF(**{**FAST, "fold_in_epochs": 10}, random_state=0).fit(data)
    before = _weights(model)
    net_before = {k: v.clone() for k, v in model._net().state_dict().items()}
    hist = data.csr()
    rows = [hist[[3]], hist[[12, 3]], hist[[7, 25, 3]]]
    got = [model._fold_in_embeddings(r) for r in rows]
    for g, m in got[1:]:
        torch.testing.assert_close(g[-1], got[0][0][0], rtol=0, atol=0)
        torch.testing.assert_close(m[-1], got[0][1][0], rtol=0, atol=0)
    assert got[0][0].abs().max() > 0  # it moved from zero
    for k, v in model._net().state_dict().items():
        torch.testing.assert_close(v, net_before[k], rtol=0, atol=0)
    for k, v in _weights(model).items():
        np.testing.assert_array_equal(v, before[k])


def test_early_stopping_keeps_the_best_epoch(blocks, one_thread):
    data = blocks[0]
    carved = carve_validation(data, "user-random", 0.2, random_state=0)
    model = NCF(**{**FAST, "epochs": 12, "patience": 2, "learning_rate": 0.05},
                random_state=0).fit(carved.train, carved.valid)  # fmt: skip
    curve = model.history_["valid_ndcg@10"]
    assert model.best_epoch_ == int(np.argmax(curve)) + 1
    # the kept weights are the best epoch's: their validation NDCG is the curve's maximum
    check = RankingValidation(model.user_items_, carved.valid)
    users_scores = lambda users: model._score(model._make_query(users, None), None)  # noqa: E731
    assert check(users_scores) == pytest.approx(max(curve), abs=1e-6)
    assert len(curve) < 12 or model.best_epoch_ == 12


def test_bf16_weights_save_and_load_as_bf16(blocks, tmp_path):
    data = blocks[0]
    model = NCF(**FAST, random_state=0).fit(data)
    model.weights_ = {k: v.to(torch.bfloat16) for k, v in model.weights_.items()}
    model._prepare()
    ids, scores = model.recommend(np.arange(5), k=4)
    path = model.save(tmp_path / "ncf.lrec")
    back = load(path)
    assert all(v.dtype == torch.bfloat16 for v in back.weights_.values())
    for k, v in model.weights_.items():
        assert torch.equal(back.weights_[k].view(torch.int16), v.view(torch.int16))
    b_ids, b_scores = back.recommend(np.arange(5), k=4)
    np.testing.assert_array_equal(b_ids, ids)
    np.testing.assert_array_equal(b_scores, scores)


def test_devices_and_configuration_errors(blocks):
    data = blocks[0]
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert NCF(**FAST, device="cpu", random_state=0).fit(data).is_fitted
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            NCF(**FAST, device="cuda").fit(data)
    with pytest.raises(ConfigError, match="device must be"):
        NCF(**FAST, device="toaster").fit(data)
    with pytest.raises(ConfigError, match="pretrain"):
        NCF(**FAST, architecture="gmf", pretrain=True).fit(data)
    with pytest.raises(ConfigError, match="dropout"):
        NCF(dropout=1.0).fit(data)


@pytest.mark.realdata
def test_quality_floor_ml100k(one_thread):
    """A short fit (5 epochs) already ranks clearly better than popularity on ml-100k."""
    from lensrec.data import load_dataset
    from lensrec.evaluate import evaluate
    from lensrec.models import Popularity
    from lensrec.split import make_split, min_rating

    try:
        data = min_rating(load_dataset("ml-100k"), 4)
    except Exception as exc:  # no cache and no network here
        pytest.skip(f"ml-100k unavailable: {exc}")
    split = make_split(data, "last:3:row")
    metrics = ["ndcg@10", "hit_rate@10"]
    pop = Popularity().fit(split.train)
    base = evaluate(pop, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    model = NCF(epochs=5, random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["hit_rate@10"] >= 1.1 * base["hit_rate@10"], (got, base)
    assert got["ndcg@10"] >= 1.1 * base["ndcg@10"], (got, base)
