"""Each rating model's kernels compile one numba signature whatever the call path.

numba specialises a kernel per array kind (read-only or writable, C or A layout, dtype):
the training data's arrays are read-only, a hold-out's copies writable, so without care one
fit compiled ``adam_epoch`` twice and ``predict_pairs`` three times. Run in a fresh process:
the tests that call the kernels directly with their own arrays add signatures of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys

CODE = r"""
import json
import numpy as np
from lensrec.kernels import biased_mf as kb, svd as ks, svdpp as kp
from lensrec.models import SVD, BiasedMF, SVDpp
from lensrec.testing import make_ratings

data = make_ratings(n_users=30, n_items=20, density=0.5, random_state=0)
valid = make_ratings(n_users=30, n_items=20, density=0.2, random_state=1)
for cls, extra in ((BiasedMF, {}), (SVD, {"valid_fraction": 0.25}),
                   (SVDpp, {"valid_fraction": 0.25})):
    for kw in ({}, {"valid_fraction": 0.0}):
        model = cls(factors=2, epochs=3, random_state=0, **{**extra, **kw}).fit(data)
        model.predict([0, 1], [1, 2])  # lists
        model.predict(data.users, data.items)  # the data's own (read-only) arrays
        model.predict(np.array([0], dtype=np.int64), np.array([1], dtype=np.int64))
    cls(factors=2, epochs=3, random_state=0).fit(data, valid=valid)
out = {f"{m.__name__}.{f.__name__}": len(f.signatures)
       for m in (kb, ks, kp) for f in (m.predict_pairs,)}
out["adam_epoch"] = len(kb.adam_epoch.signatures)
out["sgd_epoch"] = len(ks.sgd_epoch.signatures)
out["svdpp_epoch"] = len(kp.svdpp_epoch.signatures)
print(json.dumps(out))
"""


def test_one_signature_per_kernel():
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600, check=True
    )
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts == dict.fromkeys(counts, 1), counts
    assert len(counts) == 6
