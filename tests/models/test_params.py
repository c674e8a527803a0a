"""Hyper-parameters declared once: constraints and search ranges derived from the annotations."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pytest

from lensrec import ConfigError, MissingExtraError
from lensrec.models import MODELS, Popularity, Recommender
from lensrec.models._params import Interval, Options, Range, Search, declared
from lensrec.testing import make_ratings
from lensrec.types import RandomState


def _registered() -> list[type[Recommender]]:
    out = []
    for name in MODELS:
        try:
            out.append(MODELS[name])
        except MissingExtraError:  # e.g. torch models without the extra
            continue
    return out


@pytest.fixture(params=_registered(), ids=lambda cls: cls.__name__)
def model_class(request):
    return request.param


# --- every registered model -------------------------------------------------------------------
def test_every_parameter_has_a_default_and_a_constraint(model_class):
    defaults = model_class.param_defaults()
    assert defaults, "a model has at least random_state"
    assert all(v is not inspect.Parameter.empty for v in defaults.values())
    unconstrained = set(defaults) - set(model_class._constraints) - {"random_state"}
    assert not unconstrained, f"parameters without a constraint: {sorted(unconstrained)}"


def test_constraints_and_search_space_name_constructor_parameters(model_class):
    names = set(model_class.param_defaults())
    assert set(model_class._constraints) <= names
    assert set(model_class.search_space) <= names


def test_every_default_satisfies_its_constraint(model_class):
    defaults = model_class.param_defaults()
    for name, rule in model_class._constraints.items():
        assert rule.ok(defaults[name]), f"{name}={defaults[name]!r}: must be {rule.describe()}"
    model_class().check_params()


def test_every_search_range_lies_inside_its_constraint(model_class):
    rules = model_class._constraints
    for name, space in model_class.search_space.items():
        rule = rules[name]
        if space[0] == "choice":
            assert space[1] and all(rule.ok(v) for v in space[1]), (name, space)
            continue
        kind, low, high, scale = space
        assert kind in ("int", "float") and scale in ("log", "linear"), (name, space)
        assert low < high and (scale == "linear" or low > 0), (name, space)
        if kind == "int":
            assert type(low) is int and type(high) is int, (name, space)
        # both ends and a point inside are allowed values
        for v in (low, high, (low + high) // 2 if kind == "int" else (low + high) / 2):
            assert rule.ok(v), f"{name}: search value {v!r} is not {rule.describe()}"


def test_derived_attributes_are_fresh_copies():
    Popularity._constraints.clear()
    Popularity.search_space.clear()
    assert set(Popularity._constraints) == {"by", "damping", "min_rating"}
    assert set(Popularity.search_space) == {"by", "damping"}


# --- the declarations and what they derive ----------------------------------------------------
def _one(hint: Any) -> tuple[Any, Any]:
    constraints, space = declared("M", {"x": hint})
    return constraints.get("x"), space.get("x")


def test_numbers_ranges_none_and_search():
    rule, space = _one(Annotated[int, Range(1), Search(16, 256, log=True)])
    assert rule == Interval(int, 1) and space == ("int", 16, 256, "log")
    rule, space = _one(Annotated[float, Range(0.0, low_open=True), Search(0, 1)])
    assert rule == Interval(float, 0.0, low_open=True) and space == ("float", 0.0, 1.0, "linear")
    assert _one(Annotated[int | None, Range(1)])[0] == Interval(int, 1, allow_none=True)
    assert _one(Annotated[int, Range(1)] | None)[0] == Interval(int, 1, allow_none=True)
    assert _one(float)[0] == Interval(float)  # any finite number
    assert _one(int | float)[0] == Interval(float)


def test_literals_and_bools_are_options():
    assert _one(Annotated[Literal["cg", "cholesky"], Search()]) == (
        Options(("cg", "cholesky")),
        ("choice", ["cg", "cholesky"]),
    )
    assert _one(bool) == (Options((False, True)), None)
    assert _one(bool | Literal["average"])[0] == Options((False, True, "average"))
    assert _one(Literal["a"] | None)[0] == Options(("a", None))


def test_a_number_or_a_word_keeps_its_message():
    rule, space = _one(Annotated[int | Literal["auto"], Range(1), Search(8, 256, log=True)])
    assert rule.describe() == 'an integer >= 1 or "auto"' and space == ("int", 8, 256, "log")
    assert rule.ok("auto") and rule.ok(3) and not rule.ok("Auto") and not rule.ok(0)
    assert not rule.ok(True) and not rule.ok(2.5)
    rule = _one(Annotated[float | Literal["sample"], Range(0.0, low_open=True)])[0]
    assert rule.describe() == 'a number > 0 or "sample"'
    rule = _one(Annotated[float | Literal["auto"] | None, Range(0.0, 1.0)])[0]
    assert rule.describe() == 'a number in [0, 1] or "auto" or None' and rule.ok(None)


def test_other_types_are_not_checked_unless_a_rule_says():
    assert _one(str) == (None, None)
    assert _one(RandomState) == (None, None)  # int | Generator | None
    assert _one(tuple[float, float] | None) == (None, None)

    class Even:
        def ok(self, value: Any) -> bool:
            return isinstance(value, int) and value % 2 == 0

        def describe(self) -> str:
            return "an even integer"

    rule, space = _one(Annotated[int, Even(), Search(2, 8)])
    assert isinstance(rule, Even) and space == ("int", 2, 8, "linear")


@pytest.mark.parametrize(
    "hint, what",
    [
        (Annotated[str, Range(1)], "Range needs an int or float"),
        (Annotated[int, Search()], "Search\\(\\) without bounds"),
        (Annotated[Literal["a", "b"], Search(0, 1)], "needs a number type"),
        (Annotated[float, Search(1.0, 1.0)], "low < high"),
        (Annotated[float, Search(0.0, 1.0, log=True)], "log=True\\) needs low > 0"),
        (Annotated[int, Search(0.5, 10)], "integer Search bounds"),
        (Annotated[int, Range(1), Range(2)], "at most one"),
    ],
)
def test_meaningless_declarations_are_refused(hint, what):
    with pytest.raises(TypeError, match=f"M.x: .*{what}"):
        declared("M", {"x": hint})


# --- models declared with fields --------------------------------------------------------------
class Scaled(Popularity):
    """Popularity scaled by a factor (a field added to the inherited ones)."""

    scale: Annotated[float, Range(0.0, low_open=True), Search(0.5, 2.0)] = 1.0
    mode: Literal["fast", "exact"] = "fast"

    def _fit(self, train, valid, gen, *, show_progress, callback):
        super()._fit(train, valid, gen, show_progress=show_progress, callback=callback)
        self.item_scores_ = self.item_scores_ * np.float32(self.scale)


def test_fields_give_a_keyword_only_constructor_that_stores_unchanged():
    sig = inspect.signature(Scaled)
    assert list(sig.parameters) == ["by", "damping", "min_rating", "random_state", "scale", "mode"]
    assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values())
    with pytest.raises(TypeError):
        Scaled("rating")
    gen = np.random.default_rng(0)
    m = Scaled(scale=-2, random_state=gen)  # no validation in the constructor
    assert m.scale == -2 and m.random_state is gen
    assert repr(Scaled(scale=3.0, by="rating")) == "Scaled(by='rating', scale=3.0)"
    assert Scaled().get_params() == {
        "by": "count",
        "damping": 10.0,
        "min_rating": None,
        "random_state": None,
        "scale": 1.0,
        "mode": "fast",
    }
    assert Scaled().set_params(mode="exact").mode == "exact"
    assert Scaled() != Scaled() and len({Scaled(), Scaled()}) == 2  # identity, as before


def test_inherited_and_new_fields_are_checked_in_fit():
    assert Scaled.search_space == {
        "by": ("choice", ["count", "rating"]),
        "damping": ("float", 0.0, 100.0, "linear"),
        "scale": ("float", 0.5, 2.0, "linear"),
    }
    data = make_ratings()
    with pytest.raises(
        ConfigError, match=r"Scaled: scale must be a number in \(0.0, inf\), got -2"
    ):
        Scaled(scale=-2).fit(data)
    with pytest.raises(ConfigError, match="mode must be one of 'fast', 'exact', got 'slow'"):
        Scaled(mode="slow").fit(data)
    with pytest.raises(ConfigError, match="by must be one of"):
        Scaled(by="votes").fit(data)
    base = Popularity().fit(data).item_scores_
    np.testing.assert_allclose(Scaled(scale=2.0).fit(data).item_scores_, 2 * base)


def test_a_hand_written_constructor_declares_the_same_way():
    class Handwritten(Recommender):
        def __init__(
            self,
            *,
            factors: Annotated[int, Range(1), Search(4, 64, log=True)] = 8,
            solver: Literal["cg", "cholesky"] = "cg",
            random_state: RandomState = None,
        ):
            self.factors = factors
            self.solver = solver
            self.random_state = random_state

    assert Handwritten._constraints == {
        "factors": Interval(int, 1),
        "solver": Options(("cg", "cholesky")),
    }
    assert Handwritten.search_space == {"factors": ("int", 4, 64, "log")}
    with pytest.raises(ConfigError, match="factors must be an integer in \\[1, inf\\), got 0"):
        Handwritten(factors=0).check_params()


def test_dicts_assigned_on_the_class_replace_the_derived_ones():
    class Explicit(Popularity):
        _constraints: ClassVar[dict[str, Any]] = {"damping": Interval(float, 1.0)}
        search_space: ClassVar[dict[str, tuple[Any, ...]]] = {}

    assert Explicit.search_space == {} and Explicit.param_defaults() == Popularity.param_defaults()
    Explicit(by="votes").check_params()  # "by" is no longer checked
    with pytest.raises(ConfigError, match="damping must be a number in \\[1.0, inf\\)"):
        Explicit(damping=0.5).check_params()
