"""IdMap speed on string and UUID ids against int64 ids, in one process run.

For each id kind the script makes ``--rows`` rows over ``--distinct`` distinct ids (every id
at least once, the rest drawn with a Zipf-like skew, popularity ~ 1 / (rank + 10) ** 0.9)
and times, fastest of ``--repeats`` (the repeats go round-robin over implementations, kinds
and steps, so that a burst of load from elsewhere hits all of them alike):

* ``build``    ``IdMap.build(values)`` (distinct ids, sorted, plus the code of every row);
* ``init``     ``IdMap(distinct ids, shuffled)``;
* ``index``    ``m.index(values)`` (every id known, ``on_missing="raise"``);
* ``mark``     ``m.index(queries, on_missing="mark")`` on ``--rows`` queries, 10% unknown;
* ``external`` ``m.external(codes)`` for every row.

Kinds: ``int`` (sparse int64 ids), ``str`` (``"user_<number>"``, 6 to 14 characters) and
``uuid`` (canonical UUID4 strings), the strings given as numpy unicode arrays; ``str-obj`` and
``uuid-obj`` give the same strings as object arrays, which is what ``polars.Series.to_numpy()``
hands ``Interactions.from_frame``. The ``/ int`` column divides each kind's total by ``int``'s.
Before timing, each map is checked: codes point back to the values, ids in numpy's order.

Memory, in a separate process per implementation and kind (so peaks do not mix), one pass of
the same steps: the ``tracemalloc`` peak (Python-visible allocations: numpy arrays, Python
objects; *not* polars' own buffers) and the growth of the peak RSS over the RSS once the data
exist (covers polars too; Linux).

    python benchmarks/bench_ids.py [--rows 2000000] [--distinct 200000] [--repeats 3]
    python benchmarks/bench_ids.py --idmap ids_before.py --idmap lensrec   # before/after

``--idmap PATH`` loads ``IdMap`` from another copy of ``lensrec/data/ids.py`` (imported as a
module of ``lensrec.data`` so its relative imports resolve; ``lensrec`` is the installed one);
given several times, each gets a table and the last lines give the speed-ups over the first.
To get the old one: ``git show <commit>:lensrec/data/ids.py > ids_before.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("int", "str", "uuid", "str-obj", "uuid-obj")
STEPS = ("build", "init", "index", "mark", "external")


def load_idmap(path: str | None) -> type:
    """``IdMap`` from lensrec, or from the ids.py file at ``path``."""
    if path is None:
        from lensrec.data.ids import IdMap

        return IdMap
    import lensrec.data  # noqa: F401  (parent package of the loaded module)

    spec = importlib.util.spec_from_file_location("lensrec.data._bench_ids_alt", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.IdMap


def make_vocab(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct ids of ``kind`` in random order."""
    base = kind.removesuffix("-obj")
    if base == "int":
        ids = np.unique(rng.integers(1, 2**62, size=n + n // 10 + 10))[:n]
        return rng.permutation(ids)
    if base == "str":
        nums = np.unique(rng.integers(0, 10**9, size=n + n // 10 + 10))[:n]
        ids = np.array([f"user_{k}" for k in rng.permutation(nums).tolist()])
    else:
        hi = rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()
        lo = rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()
        ids = np.array(
            [str(uuid.UUID(int=(a << 64) | b, version=4)) for a, b in zip(hi, lo, strict=True)]
        )
        if np.unique(ids).size != n:  # pragma: no cover - 2**-100 odds
            raise RuntimeError("UUID collision; use another seed")
    return ids.astype(object) if kind.endswith("-obj") else ids


def make_data(kind: str, rows: int, distinct: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vocab = make_vocab(kind, distinct + distinct // 10, rng)
    known, unknown = vocab[:distinct], vocab[distinct:]
    pop = 1.0 / (np.arange(distinct) + 10.0) ** 0.9
    draws = rng.choice(distinct, size=rows - distinct, p=pop / pop.sum())
    codes = rng.permutation(np.concatenate([np.arange(distinct), draws]))
    values = known[codes]
    queries = values.copy()
    swap = rng.random(rows) < 0.1
    queries[swap] = unknown[rng.integers(0, unknown.size, size=int(swap.sum()))]
    return {"values": values, "distinct": rng.permutation(known), "queries": queries}


def steps(IdMap: type, data: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    values = data["values"]
    m, codes = IdMap.build(values, kind="user")
    return {
        "build": lambda: IdMap.build(values, kind="user"),
        "init": lambda: IdMap(data["distinct"], kind="user"),
        "index": lambda: m.index(values),
        "mark": lambda: m.index(data["queries"], on_missing="mark"),
        "external": lambda: m.external(codes),
    }


def _rss_mb() -> float:
    """Current RSS in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    """Peak RSS in MiB since the last reset (or since the start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(kind: str, args: argparse.Namespace, path: str | None) -> dict[str, float]:
    """Peak memory of one pass of every step (run in a fresh process per kind)."""
    IdMap = load_idmap(path)
    data = make_data(kind, args.rows, args.distinct, args.seed)
    fns = steps(IdMap, data)
    rss0 = _rss_mb() if _reset_peak_rss() else _peak_rss_mb()
    for fn in fns.values():
        fn()
    out = {"rss_growth_mb": max(0.0, _peak_rss_mb() - rss0)}
    tracemalloc.start()
    try:
        for fn in fns.values():
            fn()
        out["tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return out


def check(IdMap: type, kind: str, data: dict[str, Any], distinct: int) -> None:
    """A wrong fast map is no benchmark: the codes must point back to the values."""
    m, codes = IdMap.build(data["values"])
    if not (len(m) == distinct and np.array_equal(m.ids[codes], data["values"])):
        raise SystemExit(f"{kind}: IdMap.build gave wrong codes")
    if not np.array_equal(m.ids, np.sort(data["distinct"])):
        raise SystemExit(f"{kind}: IdMap.build ids are not numpy's sorted order")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--distinct", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--idmap",
        action="append",
        default=None,
        help="path of an ids.py to load IdMap from; repeat to compare several "
        "('lensrec' is the installed one)",
    )
    ap.add_argument("--kinds", default=",".join(KINDS), help="subset of " + ",".join(KINDS))
    ap.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    ap.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # child: one kind
    args = ap.parse_args(argv)
    paths = [None if p == "lensrec" else p for p in (args.idmap or ["lensrec"])]
    if args.memory_of:
        print(json.dumps(memory(args.memory_of, args, paths[0])))
        return
    kinds = [k for k in args.kinds.split(",") if k]
    if bad := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown kinds {bad}; choose from {KINDS}")
    labels = ["lensrec" if p is None else Path(p).stem for p in paths]
    impls = [load_idmap(p) for p in paths]
    print(
        f"IdMap: {args.rows:,} rows, {args.distinct:,} distinct ids, seconds, best of "
        f"{args.repeats} (round-robin over implementations, kinds and steps)",
        flush=True,
    )
    parts = {k: make_data(k, args.rows, args.distinct, args.seed) for k in kinds}
    fns: dict[tuple[int, str], dict[str, Callable[[], Any]]] = {}
    for j, IdMap in enumerate(impls):
        for k in kinds:
            check(IdMap, k, parts[k], args.distinct)
            fns[j, k] = steps(IdMap, parts[k])
            for fn in fns[j, k].values():
                fn()  # warm-up: lazy lookup tables, page faults
    best: dict[tuple[int, str, str], float] = {}
    for _ in range(args.repeats):
        for (j, k), by_step in fns.items():
            for name, fn in by_step.items():
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                best[j, k, name] = min(best.get((j, k, name), np.inf), dt)
    totals = {(j, k): sum(best[j, k, s] for s in STEPS) for j, k in fns}
    for j, label in enumerate(labels):
        print(f"\n{label} ({paths[j] or 'lensrec.data.ids'})")
        print(
            f"{'kind':9s}"
            + "".join(f"{s:>9s}" for s in STEPS)
            + f"{'total':>9s}{'/ int':>7s}"
            + ("" if args.no_memory else f"{'tracemalloc':>13s}{'RSS growth':>12s}")
        )
        for k in kinds:
            ratio = totals[j, k] / totals[j, "int"] if "int" in kinds else float("nan")
            line = f"{k:9s}" + "".join(f"{best[j, k, s]:9.3f}" for s in STEPS)
            line += f"{totals[j, k]:9.3f}{ratio:7.2f}"
            if not args.no_memory:
                cmd = [sys.executable, __file__, "--memory-of", k, "--idmap", paths[j] or "lensrec"]
                cmd += ["--rows", str(args.rows), "--distinct", str(args.distinct)]
                cmd += ["--seed", str(args.seed)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"memory run failed for {k}:\n{proc.stderr}")
                mem = json.loads(proc.stdout.strip().splitlines()[-1])
                line += f"{mem['tracemalloc_mb']:10.0f} MB{mem['rss_growth_mb']:9.0f} MB"
            print(line, flush=True)
    if len(impls) > 1:
        print(f"\nspeed-up of each implementation over {labels[0]} (total time)")
        print(f"{'kind':9s}" + "".join(f"{lab:>16s}" for lab in labels[1:]))
        for k in kinds:
            print(
                f"{k:9s}"
                + "".join(f"{totals[0, k] / totals[j, k]:15.2f}x" for j in range(1, len(impls)))
            )


if __name__ == "__main__":
    main()
