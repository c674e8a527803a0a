"""Test helpers shipped with lensrec: the model conformance suite and small data builders.

Every model, now and later, must pass :func:`check_model`. Third-party models built on
:class:`lensrec.models.Recommender` (and registered with :func:`lensrec.models.register`, so
that they can be saved and loaded) can run it too.

Hypothesis strategies for interaction tables and id lists are in the submodule
:mod:`lensrec.testing.strategies`, imported explicitly
(``from lensrec.testing.strategies import interactions``) so that importing
:mod:`lensrec.testing` does not need hypothesis.
"""

from ._conformance import (
    check_known_answers,
    check_model,
    make_blocks,
    make_checkerboard,
    make_ratings,
)

__all__ = ["check_model", "check_known_answers", "make_blocks", "make_checkerboard", "make_ratings"]
