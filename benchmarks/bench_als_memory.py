"""Peak memory of an ALS fit, lensrec vs implicit, each in its own child process.

    benchmarks/.venv/bin/python benchmarks/bench_als_memory.py --n 10000000

The same synthetic implicit data (``lensrec.data.synthetic``, 100,000 users x 20,000 items,
as ``bench_implicit_models.py``'s 10M row) is built in each child before the peak is reset
(``/proc/self/clear_refs``), so the number is what the fit itself adds over the data: the
training matrix in the library's own layout (for implicit: the CSR its user builds from the
interactions, as lensrec's fit builds its own), confidences, factors and temporaries.
Both fit 64 factors; ``--epochs`` iterations (memory does not grow with them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import gc, sys, time
import numpy as np
from lensrec.data import synthetic
which, n, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = synthetic(100_000, 20_000, n, implicit=True, random_state=0)
def st(k):
    for line in open("/proc/self/status"):
        if line.startswith(k):
            return int(line.split()[1]) / 1024
if which == "lensrec":
    from lensrec.models import ALS
    ALS.warm_up()
    model = ALS(factors=64, epochs=epochs, random_state=0)
    fit = lambda: model.fit(data)
else:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    def csr():  # what a user of implicit builds from the interactions (lensrec's fit does)
        return sp.csr_matrix((np.ones(len(data), np.float32), (data.users, data.items)),
                             shape=(data.n_users, data.n_items))
    AlternatingLeastSquares(factors=4, iterations=1).fit(csr()[:50], show_progress=False)
    model = AlternatingLeastSquares(factors=64, iterations=epochs, random_state=0)
    fit = lambda: model.fit(csr(), show_progress=False)
gc.collect()
open("/proc/self/clear_refs", "w").write("5")
before = st("VmRSS"); t = time.perf_counter()
fit()
print(f"{which:8s} fit {time.perf_counter() - t:6.1f} s  peak over the data {st('VmHWM') - before:6.0f} MiB")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    print(f"{args.n:,} interactions, 100,000 users x 20,000 items, 64 factors")
    for which in ("lensrec", "implicit"):
        out = subprocess.run([sys.executable, "-c", CHILD, which, str(args.n), str(args.epochs)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
