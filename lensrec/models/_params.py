"""Hyper-parameters declared once, in their annotation; constraints checked by one helper in ``fit``.

A model declares each hyper-parameter on one line, its type saying what values it takes::

    factors: Annotated[int, Range(1), Search(16, 256, log=True)] = 64
    solver: Annotated[Literal["cg", "cholesky"], Search()] = "cg"
    reg_factors: Annotated[float | Literal["auto"], Range(0.0)] = "auto"
    min_rating: float | None = None

- ``int`` / ``float`` give an :class:`Interval` of that kind (any finite number without a
  :class:`Range`); ``bool`` and ``Literal[...]`` give :class:`Options`; ``| None`` allows None.
  A number or a ``Literal`` (``int | Literal["auto"]``) gives an :class:`Interval` that also
  accepts those values.
- :class:`Search` is the tuning range: ``Search(lo, hi, log=...)`` on a number,
  ``Search()`` on a ``Literal`` / ``bool`` (a choice among all its values).
- Any other rule is an object with ``ok(value) -> bool`` and ``describe() -> str`` placed in
  the ``Annotated`` metadata; it replaces the derived one.
- A type made of anything else (``str``, a tuple, ``RandomState``) is not checked.

:func:`declared` turns a class's resolved annotations into the ``_constraints`` and
``search_space`` dicts the rest of lensrec reads.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from ..errors import ConfigError

__all__ = ["Interval", "Options", "Range", "Search", "Declared", "check_params", "declared"]

T = TypeVar("T")


def _num(v: float) -> str:
    """``1``, ``0``, ``0.5``: a bound as people write it (no trailing ``.0``)."""
    return repr(int(v)) if float(v).is_integer() else repr(v)


def _value(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``kind`` is ``int`` or ``float``; bounds are inclusive unless told.

    ``also`` holds other values accepted besides numbers (``"auto"``).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_none: bool = False
    also: tuple[Any, ...] = ()

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        tail = " or None" if self.allow_none else ""
        if self.also:  # 'an integer >= 1 or "auto"'
            if self.low is not None and self.high is not None:
                bounds = self._brackets(_num(self.low), _num(self.high))
                where = f" in {bounds}"
            elif self.low is not None:
                where = f" {'>' if self.low_open else '>='} {_num(self.low)}"
            elif self.high is not None:
                where = f" {'<' if self.high_open else '<='} {_num(self.high)}"
            else:
                where = ""
            return f"{what}{where} or {' or '.join(map(_value, self.also))}{tail}"
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        return f"{what} in {self._brackets(lo, hi)}{tail}"

    def _brackets(self, lo: str, hi: str) -> str:
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{left}{lo}, {hi}{right}"

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if any(type(value) is type(v) and value == v for v in self.also):
            return True
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


@dataclass(frozen=True)
class Range:
    """The allowed range of a numeric hyper-parameter (in its ``Annotated`` metadata).

    Bounds are inclusive unless ``low_open`` / ``high_open``; the kind (int or float) comes
    from the annotated type.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False


@dataclass(frozen=True)
class Search:
    """The tuning range of a hyper-parameter (in its ``Annotated`` metadata).

    ``Search(lo, hi, log=True)`` on a number samples ``[lo, hi]`` (log-uniformly when
    ``log``); ``Search()`` on a ``Literal`` or ``bool`` chooses among all its values.
    """

    low: float | None = None
    high: float | None = None
    log: bool = False


def _is_rule(obj: Any) -> bool:
    return callable(getattr(obj, "ok", None)) and callable(getattr(obj, "describe", None))


def _members(hint: Any, meta: list[Any]) -> list[Any]:
    """The union's members, with ``Annotated`` unwrapped (its metadata appended to ``meta``)."""
    if typing.get_origin(hint) is Annotated:
        base, *extra = typing.get_args(hint)
        meta.extend(extra)
        return _members(base, meta)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return [m for arg in typing.get_args(hint) for m in _members(arg, meta)]
    return [hint]


def _declare(where: str, hint: Any) -> tuple[Any | None, tuple[Any, ...] | None]:
    """``(rule, search range)`` of one annotation; None for what it does not declare."""
    meta: list[Any] = []
    members = _members(hint, meta)
    ranges = [m for m in meta if isinstance(m, Range)]
    searches = [m for m in meta if isinstance(m, Search)]
    custom = [m for m in meta if _is_rule(m)]
    if len(ranges) > 1 or len(searches) > 1 or len(custom) > 1:
        raise TypeError(f"{where}: at most one Range, one Search and one rule per parameter")
    kinds = {m for m in members if m in (int, float)}
    kind = float if float in kinds else int if kinds else None
    values: list[Any] = []
    allow_none = False
    understood = True
    for m in members:
        if m is None or m is type(None):
            allow_none = True
        elif m is bool:
            values += [False, True]
        elif typing.get_origin(m) is Literal:
            values += list(typing.get_args(m))
        elif m not in (int, float):
            understood = False  # str, tuples, Generators...: not checked unless a rule says
    if ranges and kind is None:
        raise TypeError(f"{where}: Range needs an int or float type")
    if ranges and custom:
        raise TypeError(f"{where}: give either a Range or a custom rule, not both")

    rule: Any = None
    if custom:
        rule = custom[0]
    elif understood and kind is not None:
        r = ranges[0] if ranges else Range()
        rule = Interval(kind, r.low, r.high, r.low_open, r.high_open, allow_none, tuple(values))
    elif understood and values:
        rule = Options(tuple(values) + ((None,) if allow_none else ()))

    space: tuple[Any, ...] | None = None
    if searches:
        s = searches[0]
        if s.low is None and s.high is None:
            if kind is not None or not values:
                raise TypeError(f"{where}: Search() without bounds needs a Literal or bool type")
            space = ("choice", list(values))
        else:
            if kind is None or s.low is None or s.high is None or not s.low < s.high:
                raise TypeError(f"{where}: Search(low, high) needs a number type and low < high")
            if s.log and s.low <= 0:
                raise TypeError(f"{where}: Search(..., log=True) needs low > 0")
            if kind is int and not (float(s.low).is_integer() and float(s.high).is_integer()):
                raise TypeError(f"{where}: an integer parameter needs integer Search bounds")
            lo, hi = (int(s.low), int(s.high)) if kind is int else (float(s.low), float(s.high))
            space = (kind.__name__, lo, hi, "log" if s.log else "linear")
    return rule, space


def declared(
    owner: str, hints: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """The constraints and the search space declared by resolved parameter annotations.

    ``hints`` maps each hyper-parameter to its annotation, resolved (``Annotated`` kept);
    a parameter without annotation is left out. Returns ``(constraints, search_space)``:
    name -> rule, and name -> ``("int" | "float", low, high, "log" | "linear")`` or
    ``("choice", [values])``. A declaration that cannot mean anything raises TypeError.
    """
    constraints: dict[str, Any] = {}
    space: dict[str, tuple[Any, ...]] = {}
    for name, hint in hints.items():
        rule, search = _declare(f"{owner}.{name}", hint)
        if rule is not None:
            constraints[name] = rule
        if search is not None:
            space[name] = search
    return constraints, space


def param_hints(cls: type, names: list[str]) -> dict[str, Any]:
    """Each named constructor parameter's annotation, resolved where it was written.

    A constructor generated from the class's fields (see ``Recommender.__init_subclass__``)
    takes its annotations from the classes along the MRO, each resolved in its own module; a
    hand-written ``__init__`` from its signature. ``Annotated`` metadata is kept.
    """
    owner = next(k for k in cls.__mro__ if "__init__" in vars(k))
    sources: list[tuple[dict[str, Any], dict[str, Any]]]
    if "__dataclass_params__" in vars(owner):
        sources = [
            (
                vars(k).get("__annotations__", {}),
                getattr(sys.modules.get(k.__module__), "__dict__", {}),
            )
            for k in cls.__mro__
        ]
    else:
        init = vars(owner)["__init__"]
        sources = [(getattr(init, "__annotations__", {}), getattr(init, "__globals__", {}))]
    hints: dict[str, Any] = {}
    for name in names:
        for written, namespace in sources:
            if name not in written:
                continue
            hint = written[name]
            if isinstance(hint, str):  # from __future__ import annotations
                try:
                    hint = eval(hint, namespace)  # as typing.get_type_hints does
                except Exception as exc:
                    raise TypeError(
                        f"{cls.__qualname__}.{name}: cannot resolve its annotation {hint!r} "
                        f"({type(exc).__name__}: {exc})"
                    ) from None
            hints[name] = hint
            break
    return hints


@functools.cache
def _derived(cls: Any) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    return declared(cls.__qualname__, param_hints(cls, cls._param_names()))


class Declared(Generic[T]):
    """A class attribute derived from the hyper-parameter annotations (once per class).

    ``Declared("constraints")`` / ``Declared("search_space")`` on the base class; a subclass
    that assigns the attribute a dict of its own uses that dict instead.
    """

    def __init__(self, part: Literal["constraints", "search_space"]):
        self.part = part

    def __get__(self, obj: object, owner: type) -> T:
        constraints, space = _derived(owner)
        out: Any = dict(constraints if self.part == "constraints" else space)
        return out


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


def check_param_types(owner: str, params: dict[str, Any], constraints: dict[str, Any]) -> None:
    """The cheap half of :func:`check_params`, run by the constructor: a value of the wrong
    kind (text for a number, a float for an integer) raises :class:`ConfigError` at once
    instead of at ``fit``. Ranges and options are checked by ``fit``."""
    for name, rule in constraints.items():
        if name not in params or not isinstance(rule, Interval):
            continue
        value = params[name]
        if value is None or any(type(value) is type(v) and value == v for v in rule.also):
            continue  # None (and range) problems are fit's to report
        wrong = isinstance(value, bool) or not isinstance(value, numbers.Real)
        wrong |= rule.kind is int and not isinstance(value, numbers.Integral)
        if wrong:
            meant = _meant(rule, value)
            fix = f"{owner}({name}={meant})" if meant else f"{owner}({name}=...)"
            raise ConfigError(
                f"{owner}: {name} must be {rule.describe()}, got {value!r} "
                f"({type(value).__name__}); write {fix} or --set {name}=..."
            )


def _meant(rule: Interval, value: Any) -> str | None:
    """The value as it was probably meant (``"64"`` -> ``64``), when it reads as one."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if rule.kind is int:
        return repr(int(number)) if number.is_integer() else None
    return repr(number)
