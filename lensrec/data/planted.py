"""Small data whose right answer is known by construction (tests, warm-ups, examples).

- :func:`make_ratings`: explicit ratings from a planted low-rank model plus noise;
- :func:`make_checkerboard`: user u likes item i when u + i is even;
- :func:`make_blocks`: users and items in planted groups; users interact within their group.

These live in :mod:`lensrec.data` (not :mod:`lensrec.testing`) so that models can compile
their kernels on them (``warm_up``) without importing the test helpers.
"""

from __future__ import annotations

import numpy as np

from .interactions import Interactions

__all__ = ["make_ratings", "make_checkerboard", "make_blocks"]


def make_ratings(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.3,
    *,
    factors: int = 3,
    noise: float = 0.3,
    random_state: int = 0,
    string_ids: bool = False,
) -> Interactions:
    """Explicit ratings (1..5) from a planted rank-``factors`` model plus Gaussian noise.

    Every user rates at least one item and every item is rated. Ratings are
    ``clip(round(3 + p_u . q_i + noise), 1, 5)``; timestamps are a random permutation.
    """
    gen = np.random.default_rng(random_state)
    p = gen.normal(size=(n_users, factors))
    q = gen.normal(size=(n_items, factors))
    mask = gen.random((n_users, n_items)) < density
    mask[np.arange(n_users), gen.integers(0, n_items, n_users)] = True  # every user rates
    mask[gen.integers(0, n_users, n_items), np.arange(n_items)] = True  # every item is rated
    u, i = np.nonzero(mask)
    raw = (p[u] * q[i]).sum(1) + gen.normal(scale=noise, size=u.size)
    r = np.clip(np.round(3 + raw), 1, 5)
    t = 1_000_000 + gen.permutation(u.size)
    users = np.array([f"u-{x}" for x in u]) if string_ids else u + 100
    items = np.array([f"i-{x}" for x in i]) if string_ids else i + 1000
    return Interactions.from_arrays(users, items, r, t, name="planted")


def make_checkerboard(n: int = 20) -> Interactions:
    """Implicit checkerboard: user u likes item i when u + i is even (known answer)."""
    u, i = np.nonzero((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0)
    return Interactions.from_arrays(u, i, name="checkerboard")


def make_blocks(
    n_groups: int = 4,
    users_per_group: int = 15,
    items_per_group: int = 10,
    density: float = 0.5,
    *,
    noise: float = 0.0,
    ratings: bool = False,
    random_state: int = 0,
    string_ids: bool = False,
) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Users and items in ``n_groups`` planted groups; users interact inside their group.

    Each user interacts with a random ``density`` share of its group's items (at least
    two), plus, with ``noise`` > 0, that share of random items outside it. Returns
    ``(data, user_group, item_group)`` with the groups by user and item index, so a test
    can check that recommendations for a user come from the user's own group: any working
    recommender must recover this structure. With ``ratings``, in-group interactions are
    rated 4-5 and noise 1-2.
    """
    gen = np.random.default_rng(random_state)
    n_users = n_groups * users_per_group
    n_items = n_groups * items_per_group
    ug = np.repeat(np.arange(n_groups), users_per_group)
    ig = np.repeat(np.arange(n_groups), items_per_group)
    mask = (ug[:, None] == ig[None, :]) & (gen.random((n_users, n_items)) < density)
    # at least two in-group items per user
    for row in range(n_users):
        own = np.flatnonzero(ig == ug[row])
        mask[row, gen.choice(own, size=min(2, own.size), replace=False)] = True
    inside = mask.copy()
    if noise > 0:
        mask |= (ug[:, None] != ig[None, :]) & (gen.random((n_users, n_items)) < noise)
    u, i = np.nonzero(mask)
    r = None
    if ratings:
        high = gen.integers(4, 6, size=u.size)
        low = gen.integers(1, 3, size=u.size)
        r = np.where(inside[u, i], high, low).astype(np.float32)
    t = 1_000_000 + gen.permutation(u.size)
    users = np.array([f"u-{x}" for x in u]) if string_ids else u
    items = np.array([f"i-{x}" for x in i]) if string_ids else i
    data = Interactions.from_arrays(users, items, r, t, name="blocks")
    # group labels follow the IdMaps' (sorted) index order
    uidx = data.user_ids.index(
        np.array([f"u-{x}" for x in range(n_users)]) if string_ids else np.arange(n_users)
    )
    iidx = data.item_ids.index(
        np.array([f"i-{x}" for x in range(n_items)]) if string_ids else np.arange(n_items)
    )
    user_group = np.empty(n_users, dtype=np.int64)
    item_group = np.empty(n_items, dtype=np.int64)
    user_group[uidx] = ug
    item_group[iidx] = ig
    return data, user_group, item_group
