"""Every registered model passes the conformance suite, on the data its capabilities allow."""

from __future__ import annotations

import pytest

from lensrec.models import MODELS
from lensrec.testing import check_known_answers, check_model, make_blocks, make_ratings

# fast settings so the contract checks stay quick; keys are CLI names. The known-answer
# checks run with each model's defaults: those are what users get.
FAST: dict[str, dict] = {
    "biased-mf": {"epochs": 5},
    "bpmf": {"n_samples": 10, "burn_in": 3},
    "als": {"epochs": 3},
    "bpr": {"epochs": 5},
    "warp": {"epochs": 5},
    "ncf": {"epochs": 3, "factors": 8, "layers": 2, "fold_in_epochs": 5},
    "item2vec": {"epochs": 5, "factors": 16},
    "blend": {
        "component_params": {"biased-mf": {"epochs": 5}, "bpmf": {"n_samples": 10, "burn_in": 3}}
    },
    "rank-blend": {"component_params": {"als": {"epochs": 3}}},
}


def _factory(name: str, fast: bool):
    cls = MODELS[name]
    extra = FAST.get(name, {}) if fast else {}
    return lambda **kw: cls(**extra, **kw)


def _datasets(name: str):
    caps = MODELS[name].capabilities
    out = [
        ("explicit-int", lambda: make_ratings()),
        ("explicit-str", lambda: make_ratings(string_ids=True)),
    ]
    if not caps.needs_ratings:
        out.append(("implicit-str", lambda: make_blocks(noise=0.05, string_ids=True)[0]))
    return out


CASES = [(name, label, make) for name in sorted(MODELS) for label, make in _datasets(name)]


@pytest.mark.parametrize(
    ("name", "label", "make"), CASES, ids=[f"{n}-{lab}" for n, lab, _ in CASES]
)
def test_conformance(name, label, make):
    check_model(_factory(name, fast=True), make(), known_answers=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_known_answers(name):
    check_known_answers(_factory(name, fast=False))
