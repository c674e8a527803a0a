"""Hyper-parameter constraints as data, checked by one helper in ``fit``."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["Interval", "Options", "check_params"]


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``kind`` is ``int`` or ``float``; bounds are inclusive unless told."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_none: bool = False

    def describe(self) -> str:
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        what = "an integer" if self.kind is int else "a number"
        tail = " or None" if self.allow_none else ""
        return f"{what} in {left}{lo}, {hi}{right}{tail}"

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        v = float(value)
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
            return False
        return True


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.values))

    def ok(self, value: Any) -> bool:
        return value in self.values


def check_params(owner: str, params: dict[str, Any], constraints: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the argument, what was expected and what was given."""
    for name, rule in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if not rule.ok(value):
            raise ConfigError(
                f"{owner}: {name} must be {rule.describe()}, got {value!r}; "
                f"set it with {owner}({name}=...) or --set {name}=..."
            )
