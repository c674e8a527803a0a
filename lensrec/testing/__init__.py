"""Test helpers shipped with lensrec: the model conformance suite and small data builders.

Every model, now and later, must pass :func:`check_model`. Third-party models built on
:class:`lensrec.models.Recommender` can run it too.

Hypothesis strategies for interaction tables and id lists are in the submodule
:mod:`lensrec.testing.strategies`, imported explicitly
(``from lensrec.testing.strategies import interactions``) so that importing
:mod:`lensrec.testing` does not need hypothesis.
"""

from ._conformance import check_model, make_checkerboard, make_ratings

__all__ = ["check_model", "make_checkerboard", "make_ratings"]
