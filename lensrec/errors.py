"""Every error lensrec raises on purpose, under one base class.

The CLI turns any :class:`LensrecError` into one line on stderr and exit code 2;
anything else escaping is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "LensrecError",
    "DataError",
    "UnknownIdError",
    "NotFittedError",
    "ModelFormatError",
    "ConfigError",
    "MissingExtraError",
    "LensrecWarning",
    "RatingOutlierWarning",
    "SplitDropWarning",
    "UnknownIdWarning",
    "EvaluationWarning",
]


class LensrecError(Exception):
    """Base class of every lensrec error."""


class DataError(LensrecError, ValueError):
    """Bad input data: names the file, the line (1-based, when known) and the reason."""

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None):
        self.reason = reason
        self.file = None if file is None else str(file)
        self.line = line
        where = ""
        if self.file is not None:
            where = self.file
            if line is not None:
                where += f", line {line}"
            where += ": "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + reason)


class UnknownIdError(LensrecError, KeyError):
    """An external id (user or item) that the IdMap does not know."""

    def __init__(
        self, kind: str, ids: Iterable[object], count: int | None = None, hint: str | None = None
    ):
        shown = list(ids)[:5]
        self.kind = kind
        self.ids = shown
        self.count = len(shown) if count is None else count
        more = f" (and {self.count - len(shown)} more)" if self.count > len(shown) else ""
        msg = (
            f"unknown {kind} id{'s' if self.count != 1 else ''}: "
            + ", ".join(map(repr, shown))
            + more
        )
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class NotFittedError(LensrecError, ValueError):
    """A model was used before ``fit``."""


class ModelFormatError(LensrecError, ValueError):
    """A saved model file that is corrupt, foreign or of an unknown format version."""


class ConfigError(LensrecError, ValueError):
    """A bad hyper-parameter, option or command-line setting."""


class MissingExtraError(ConfigError):
    """An optional dependency (an extra: torch, optuna, plots, redis, ...) is not installed.

    The message names the extra and a command that installs it.
    """

    def __init__(self, what: str, extra: str, module: str | None = None):
        self.extra = extra
        self.module = module
        missing = f" ({module} is not installed)" if module else ""
        super().__init__(
            f"{what} needs the '{extra}' extra{missing}: pip install 'lensrec[{extra}]' "
            f"(from a clone: pip install -e '.[{extra}]')"
        )


class LensrecWarning(UserWarning):
    """Base class of lensrec warnings."""


class RatingOutlierWarning(LensrecWarning):
    """Ratings far outside the scale inferred from the data (when no scale was declared).

    Attributes ``file``, ``line`` (1-based, of the first such rating), ``value`` and ``count``
    (how many ratings lie outside). The ratings are kept: declare the scale to reject them.
    """

    def __init__(self, message: str, *, file: str, line: int, value: float, count: int):
        super().__init__(message)
        self.file, self.line, self.value, self.count = file, line, value, count


class UnknownIdWarning(LensrecWarning):
    """Ids of a query the model does not know were left out (the message names them)."""


class EvaluationWarning(LensrecWarning):
    """An evaluation whose inputs look wrong (train and test swapped, test seen in training)."""


class SplitDropWarning(LensrecWarning):
    """A split dropped a large share of its test part (cold users or items)."""
