"""Every registered model passes the conformance suite."""

from __future__ import annotations

import pytest

from lensrec.models import MODELS
from lensrec.testing import check_model, make_ratings

# fast settings so the suite stays quick; keys are CLI names
FAST: dict[str, dict] = {
    "biased-mf": {"epochs": 5},
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("string_ids", [False, True])
def test_conformance(name, string_ids):
    cls = MODELS[name]
    extra = {k: v for k, v in FAST.get(name, {}).items() if k in cls._param_names()}
    train = make_ratings(string_ids=string_ids)
    check_model(lambda **kw: cls(**extra, **kw), train)
