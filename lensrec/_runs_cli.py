"""``lensrec runs compare A B`` (two runs' metric differences with the paired test) and
``lensrec report`` (the HTML page from the run records).

Registered through ``cli.COMMAND_MODULES``; imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_commands", "cmd_runs_compare", "cmd_report"]


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from .experiments.compare import compare_runs, format_compare

    result = compare_runs(args.a, args.b, args.runs_dir, n_boot=args.n_boot)
    if args.json:
        from ._io import dumps

        print(dumps({"a": result["a"].run_id, "b": result["b"].run_id,
                     "same_protocol": result["same_protocol"], "rows": result["rows"]}))  # fmt: skip
    else:
        print(format_compare(result))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    out = build_report(
        args.runs_dir,
        run_ids=args.run or None,
        out=args.out,
        maps=not args.no_maps,
        progress=lambda text: print(text, flush=True),
    )
    for note in out.notes:
        print(f"note: {note}")
    print(f"report ({out.images} figures) written to {out.path.resolve()}")
    return 0


def add_commands(sub: Any, add: Any) -> None:
    """Register ``runs compare`` and ``report`` (see ``cli.COMMAND_MODULES``)."""
    p = add(sub, "report", "one self-contained HTML page from the run records "
            "(needs lensrec[report])")  # fmt: skip
    p.add_argument("--runs-dir", default="runs", help="where run records are")
    p.add_argument("--out", help="HTML file (default: RUNS_DIR/report.html)")
    p.add_argument("--run", action="append", metavar="RUN_ID",
                   help="only these runs (repeatable; default: the latest of each configuration)")  # fmt: skip
    p.add_argument("--no-maps", action="store_true", help="skip the UMAP / t-SNE maps")
    p.set_defaults(func=cmd_report)

    runs = add(sub, "runs", "work with recorded runs")
    rsub = runs.add_subparsers(dest="runs_command", required=True, metavar="RUNS_COMMAND")
    p = add(rsub, "compare", "metric differences of two runs (A - B) with a paired test per metric")
    p.add_argument("a", help="run id (or a unique part of it, or its JSON file)")
    p.add_argument("b", help="run id (or a unique part of it, or its JSON file)")
    p.add_argument("--runs-dir", default="runs", help="where run records are")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_runs_compare)
