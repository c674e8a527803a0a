"""Serving: export top-K lists (Redis in a compact encoding, or Parquet) and answer HTTP.

- :mod:`~lensrec.serving.encoding`: the packed list format and the id tables;
- :mod:`~lensrec.serving.export`: :func:`export_redis` (versioned, atomically published),
  :func:`export_parquet`;
- :mod:`~lensrec.serving.memory`: the memory report (three encodings, Redis's accounting);
- :mod:`~lensrec.serving.backends`: :class:`EmbeddedBackend` (a model file) and
  :class:`RedisBackend` (an export);
- :mod:`~lensrec.serving.app`: :func:`create_app`, the FastAPI application (extra ``serve``).

Nothing heavy is imported here: redis and fastapi load with the modules that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "export_redis",
    "export_parquet",
    "ExportSummary",
    "EmbeddedBackend",
    "RedisBackend",
    "create_app",
    "memory_report",
]

_LAZY = {
    "export_redis": "export",
    "export_parquet": "export",
    "ExportSummary": "export",
    "EmbeddedBackend": "backends",
    "RedisBackend": "backends",
    "create_app": "app",
    "memory_report": "memory",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
