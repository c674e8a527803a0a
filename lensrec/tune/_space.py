"""Search spaces: a model's declared ``search_space``, narrowed or overridden, as a grid or as
optuna distributions.

A space maps a parameter name to ``("int" | "float", low, high, "log" | "linear")`` or
``("choice", [values])`` (what :class:`lensrec.models._params.Search` declares). Parameters
fixed by the caller (``--set``) leave the space; ``--grid name=v1,v2`` replaces a range by a
list of values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["model_space", "grid_values", "grid_of", "space_text"]

Space = dict[str, tuple[Any, ...]]


def model_space(
    cls: Any,
    *,
    fixed: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
    values: Mapping[str, list[Any]] | None = None,
    where: str = "tune",
) -> Space:
    """The space to search for model class ``cls``.

    ``fixed`` parameters are left out; ``only`` keeps just those names; ``values`` gives an
    explicit list for a parameter (it must be one of the model's parameters, declared in the
    space or not). Raises :class:`ConfigError` naming ``where`` and the parameter for an
    unknown name, and when nothing is left to search.
    """
    declared: Space = dict(cls.search_space)
    names = set(cls._param_names())
    model = getattr(cls, "name", "") or cls.__name__
    for name in list(values or ()) + list(only or ()):
        if name not in names:
            raise ConfigError(
                f"{where}: {model} has no parameter {name!r}; known: {', '.join(sorted(names))}"
            )
    space: Space = {}
    for name, dist in declared.items():
        space[name] = dist
    for name, vals in (values or {}).items():
        if not vals:
            raise ConfigError(f"{where}: {name} has an empty list of values")
        space[name] = ("choice", list(vals))
    if only is not None:
        keep = set(only)
        space = {k: v for k, v in space.items() if k in keep}
    for name in fixed or ():
        space.pop(name, None)
    if not space:
        raise ConfigError(
            f"{where}: the search space of {model} is empty "
            f"(declared: {', '.join(sorted(declared)) or 'none'}; fixed by --set: "
            f"{', '.join(sorted(fixed or ())) or 'none'}); give values with --grid NAME=V1,V2"
        )
    return space


def grid_values(dist: tuple[Any, ...], points: int = 3) -> list[Any]:
    """The grid for one parameter: every choice, or ``points`` values spread over the range
    (geometrically on a log range, evenly otherwise; integers rounded, duplicates dropped)."""
    if dist[0] == "choice":
        return list(dist[1])
    kind, lo, hi, scale = dist
    if points < 1:
        raise ConfigError(f"grid points must be >= 1, got {points}")
    if points == 1:
        raw = np.array([math.sqrt(lo * hi) if scale == "log" else (lo + hi) / 2.0])
    elif scale == "log":
        raw = np.geomspace(lo, hi, points)
    else:
        raw = np.linspace(lo, hi, points)
    if kind == "int":
        out: list[Any] = []
        for v in raw:
            iv = int(round(float(v)))
            if iv not in out:
                out.append(iv)
        return out
    return [float(f"{float(v):.6g}") for v in raw]


def grid_of(space: Space, points: int = 3) -> dict[str, list[Any]]:
    """The whole grid: name -> values (the search visits their Cartesian product)."""
    return {name: grid_values(dist, points) for name, dist in space.items()}


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    n = 1
    for vals in grid.values():
        n *= len(vals)
    return n


def space_text(space: Space) -> str:
    """``factors int 8..256 log, weighting one of cosine|bm25`` for one line of output."""
    parts = []
    for name, dist in space.items():
        if dist[0] == "choice":
            parts.append(f"{name} in {{{', '.join(map(str, dist[1]))}}}")
        else:
            kind, lo, hi, scale = dist
            parts.append(f"{name} {kind} {lo:g}..{hi:g}{' log' if scale == 'log' else ''}")
    return ", ".join(parts)


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """Draw one point of ``space`` from an optuna trial."""
    out: dict[str, Any] = {}
    for name, dist in space.items():
        if dist[0] == "choice":
            out[name] = trial.suggest_categorical(name, list(dist[1]))
        elif dist[0] == "int":
            out[name] = trial.suggest_int(name, int(dist[1]), int(dist[2]), log=dist[3] == "log")
        else:
            out[name] = trial.suggest_float(name, float(dist[1]), float(dist[2]),
                                            log=dist[3] == "log")  # fmt: skip
    return out
