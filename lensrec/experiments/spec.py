"""What one evaluation is: the run spec, its protocol in words and the key naming a configuration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._io import jsonable
from ..errors import ConfigError

__all__ = [
    "RunSpec",
    "parse_ks",
    "parse_metric_names",
    "filter_text",
    "relevance_rule",
    "config_key",
]


def relevance_rule(threshold: float | None) -> str:
    """What counts as relevant, in words: ``"every test item"`` or ``"rating >= 4"``."""
    return "every test item" if threshold is None else f"rating >= {threshold:g}"


@dataclass(frozen=True)
class RunSpec:
    """One evaluation to run: dataset, filters, split, model, parameters, cut-offs.

    The same spec gives the same run (the seed drives the split and the model). ``tune``,
    ``benchmark``, ``report`` and the CLI's ``evaluate`` all go through :func:`run_spec`.

    Attributes
    ----------
    dataset : str
        A MovieLens name (``"ml-100k"``) or a file path.
    split : str
        A split spec (``"ua"``, ``"last:3"``, ``"temporal:0.1"``, ...).
    model : str
        A registered model name (``"biased-mf"``, ``"popularity"``, ...).
    params : dict
        Hyper-parameters (``random_state`` defaults to ``seed``).
    k : tuple of int
        Cut-offs for ranking metrics.
    seed : int or None
        Seeds the split (where chance enters) and the model.
    min_rating, kcore : optional
        Filters applied before the split: keep ratings >= ``min_rating`` (positives);
        iterative ``kcore`` on users and items.
    metrics : tuple of str or None
        Metric names; None for every metric that applies.
    relevance_threshold : float or None
        A test item is relevant when its rating is >= this; None: every test item.
    load_options : dict
        Column mapping and parsing options for file datasets (see ``load_table``).
    """

    dataset: str = "ml-100k"
    split: str = "ua"
    model: str = "biased-mf"
    params: Mapping[str, Any] = field(default_factory=dict)
    k: tuple[int, ...] = (10,)
    seed: int | None = 42
    min_rating: float | None = None
    kcore: int | None = None
    metrics: tuple[str, ...] | None = None
    relevance_threshold: float | None = None
    load_options: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = (
        "dataset split model params k seed min_rating kcore metrics relevance_threshold"
    ).split()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, where: str = "run") -> RunSpec:
        """Build from a config mapping (a benchmark TOML ``[[runs]]`` table), checking it.

        Raises :class:`ConfigError` naming ``where``, the key and what was expected.
        """
        unknown = sorted(set(raw) - set(cls._KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(cls._KEYS)}"
            )
        if "model" not in raw:
            raise ConfigError(f"{where}: missing key 'model' (e.g. model = \"popularity\")")
        values: dict[str, Any] = {}
        for key in ("dataset", "split", "model"):
            if key in raw:
                if not isinstance(raw[key], str) or not raw[key].strip():
                    raise ConfigError(
                        f"{where}: {key} must be a non-empty string, got {raw[key]!r}"
                    )
                values[key] = raw[key].strip()
        if "params" in raw:
            if not isinstance(raw["params"], Mapping):
                raise ConfigError(
                    f"{where}: params must be a table of name = value, got {raw['params']!r}"
                )
            values["params"] = dict(raw["params"])
        if "k" in raw:
            values["k"] = parse_ks(raw["k"], where=f"{where}: k")
        if "seed" in raw:
            seed = raw["seed"]
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
            values["seed"] = seed
        for key in ("min_rating", "relevance_threshold"):
            if raw.get(key) is not None:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f"{where}: {key} must be a number, got {v!r}")
                values[key] = float(v)
        if raw.get("kcore") is not None:
            if (
                isinstance(raw["kcore"], bool)
                or not isinstance(raw["kcore"], int)
                or raw["kcore"] < 1
            ):
                raise ConfigError(
                    f"{where}: kcore must be a positive integer, got {raw['kcore']!r}"
                )
            values["kcore"] = raw["kcore"]
        if raw.get("metrics") is not None:
            values["metrics"] = parse_metric_names(raw["metrics"], where=f"{where}: metrics")
        return cls(**values)

    def filters(self) -> dict[str, Any]:
        """The filters applied before the split (part of the protocol)."""
        return {"min_rating": self.min_rating, "kcore": self.kcore}

    def protocol(self) -> dict[str, Any]:
        """What makes two runs comparable: dataset, filters, split, seed, k, relevance rule."""
        return {
            "dataset": self.dataset,
            "filters": filter_text(self.min_rating, self.kcore),
            "split": self.split,
            "seed": self.seed,
            "k": ",".join(map(str, self.k)),
            "relevance": relevance_rule(self.relevance_threshold),
        }


def filter_text(min_rating: float | None, kcore: int | None) -> str:
    """Filters in words: ``"none"``, ``"rating>=4"``, ``"rating>=4, kcore=10"``."""
    parts = []
    if min_rating is not None:
        parts.append(f"rating>={min_rating:g}")
    if kcore:
        parts.append(f"kcore={kcore}")
    return ", ".join(parts) or "none"


def parse_ks(value: Any, *, where: str = "--k") -> tuple[int, ...]:
    """``10``, ``"5,10,20"`` or ``[5, 10]`` as a sorted tuple of positive ints (ConfigError)."""
    if isinstance(value, bool):
        items: list[Any] = [value]
    elif isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    ks: list[int] = []
    for item in items:
        try:
            if isinstance(item, bool) or isinstance(item, float):
                raise ValueError
            ks.append(int(item))
        except (TypeError, ValueError):
            ks = []
            break
    if not ks or min(ks) < 1:
        raise ConfigError(f"{where} takes positive integers (10, or 5,10,20), got {value!r}")
    return tuple(sorted(set(ks)))


def parse_metric_names(value: Any, *, where: str = "--metrics") -> tuple[str, ...]:
    """Metric names from ``"ndcg,recall@20"`` or a list; each checked (ConfigError)."""
    from ..evaluate.metrics import parse_metric

    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value if v.strip()]
    else:
        raise ConfigError(f"{where} takes metric names such as ndcg,recall@20, got {value!r}")
    if not names:
        raise ConfigError(
            f"{where} names no metric (e.g. ndcg,recall@20,map_k,rmse), got {value!r}"
        )
    for name in names:
        parse_metric(name)  # raises ConfigError naming the known metrics
    return tuple(names)


def config_key(protocol: Mapping[str, Any], model: str, params: Mapping[str, Any]) -> str:
    """A short hash of protocol + model + parameters: identical configurations share it."""
    import hashlib

    blob = json.dumps(jsonable([protocol, model, dict(params)]), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
