"""Experiments: run specs, run records (one JSON file per evaluated run) and the leaderboard.

``spec``         RunSpec and the protocol in words (filters, relevance rule, config key)
``records``      RunRecord, written and read atomically, with per-user values in Parquet
``leaderboard``  the table built from the records, and its CSV and text forms
``run``          run_spec: load, split, fit, evaluate and record one spec (or its folds)
"""

from .leaderboard import (
    LOWER_IS_BETTER,
    PROTOCOL_COLUMNS,
    format_leaderboard,
    leaderboard,
    write_leaderboard_csv,
)
from .records import RunRecord, git_commit, load_per_user, load_runs, package_versions, save_run
from .run import (
    DROPPED_WARN_SHARE,
    RATING_MODEL_NOTE,
    RunOutcome,
    data_summary,
    load_spec_data,
    run_spec,
    warm_up_quietly,
)
from .spec import RunSpec, config_key, filter_text, parse_ks, parse_metric_names, relevance_rule

__all__ = [
    "RunSpec",
    "parse_ks",
    "parse_metric_names",
    "filter_text",
    "relevance_rule",
    "config_key",
    "RunRecord",
    "save_run",
    "load_runs",
    "load_per_user",
    "package_versions",
    "git_commit",
    "leaderboard",
    "write_leaderboard_csv",
    "format_leaderboard",
    "LOWER_IS_BETTER",
    "PROTOCOL_COLUMNS",
    "RunOutcome",
    "run_spec",
    "load_spec_data",
    "data_summary",
    "warm_up_quietly",
    "RATING_MODEL_NOTE",
    "DROPPED_WARN_SHARE",
]
