"""Hypothesis strategies for lensrec data: interaction tables and id lists.

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_ (in the ``dev``
extra). It is not imported by :mod:`lensrec` or :mod:`lensrec.testing`; import it
explicitly::

    from hypothesis import given
    from lensrec.testing.strategies import interactions

    @given(interactions(min_rows=5))
    def test_something(inter):
        ...

The tables are small (at most a few hundred rows) and dense in collisions (few users,
few items, few distinct timestamps), so duplicates, ties and one-row users are common.
"""

from __future__ import annotations

from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - hypothesis is in the dev extra
    raise ImportError(
        "lensrec.testing.strategies needs hypothesis: pip install 'lensrec[dev]'"
    ) from exc

from ..data.interactions import Interactions

__all__ = ["interactions", "int_ids", "str_ids", "uuid_ids"]

RATINGS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
"""Rating values drawn by :func:`interactions` by default."""


@st.composite
def interactions(
    draw: st.DrawFn,
    *,
    min_rows: int = 1,
    max_rows: int = 120,
    max_users: int = 12,
    max_items: int = 25,
    timestamps: bool = True,
    ratings: Sequence[float] = RATINGS,
) -> Interactions:
    """Small :class:`~lensrec.data.Interactions` tables built with ``from_arrays``.

    Parameters
    ----------
    min_rows, max_rows : int, default 1, 120
        Bounds on the number of rows drawn (``stats["rows_read"]``). Duplicate (user, item)
        pairs then keep the latest row (the ``from_arrays`` default), so the table itself
        can be shorter, but never empty when ``min_rows >= 1``.
    max_users, max_items : int, default 12, 25
        Upper bounds on the number of distinct external users and items; ids are drawn
        from ``0..max-1``.
    timestamps : bool, default True
        Draw integer timestamps in ``0..6`` (many ties); without them the table has none.
    ratings : sequence of float, default :data:`RATINGS`
        Values ratings are drawn from.

    Returns
    -------
    SearchStrategy[Interactions]
        Half of the examples use string user ids (``"u3"``), the others integers; item
        ids are integers.
    """
    n = draw(st.integers(min_rows, max_rows))
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    users: list[int] | list[str] = draw(
        st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n)
    )
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    values = draw(st.lists(st.sampled_from(list(ratings)), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)) if timestamps else None
    if draw(st.booleans()):
        users = [f"u{x}" for x in users]
    return Interactions.from_arrays(users, items, values, ts)


def int_ids(*, min_size: int = 1, max_size: int = 200) -> st.SearchStrategy[list[int]]:
    """Lists of unique integer ids spanning most of the int64 range."""
    return st.lists(st.integers(-(2**62), 2**62), min_size=min_size, max_size=max_size, unique=True)


def str_ids(*, min_size: int = 1, max_size: int = 200) -> st.SearchStrategy[list[str]]:
    """Lists of unique non-empty unicode ids (up to 12 characters, any script).

    No id contains ``"\\x00"``: numpy unicode arrays drop trailing NUL characters, so such
    an id would not survive a round trip through an array.
    """
    return st.lists(
        st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=12),
        min_size=min_size,
        max_size=max_size,
        unique=True,
    )


def uuid_ids(*, min_size: int = 1, max_size: int = 200) -> st.SearchStrategy[list[str]]:
    """Lists of unique UUIDs in their canonical string form."""
    return st.lists(st.uuids().map(str), min_size=min_size, max_size=max_size, unique=True)
