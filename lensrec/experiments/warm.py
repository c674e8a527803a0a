"""Compiling the numba kernels ahead, in parallel processes, on a first run.

numba compiles each kernel the first time it is called and caches the machine code on disk
(``cache=True``: ``__pycache__`` beside the kernels, or ``NUMBA_CACHE_DIR``). A first
``lensrec benchmark`` used to spend most of its time compiling, one model after the other,
on one core. :class:`Precompiler` runs the models' ``warm_up`` (tiny fits that compile every
kernel a real fit calls) in a pool of worker processes, one per core, in the order the runs
need them; the caller waits for a model's warm-up just before fitting it, so compiling the
next models overlaps fitting this one, and the main process finds every kernel in the cache.

Whether the cache is complete is known from a marker written after every warm-up of a
precompilation succeeded, keyed by the numba and Python versions and the kernel sources
(``mtime`` and size, as numba keys its own cache), so a second run starts no process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["UMAP_JOB", "Precompiler", "kernels_cached", "mark_kernels_cached"]

_log = logging.getLogger(__name__)

_KERNELS = Path(__file__).resolve().parents[1] / "kernels"


def _cache_dir() -> Path:
    """Where numba keeps the kernels' cache (the marker lives there too)."""
    from numba.core import config

    cache_dir = getattr(config, "CACHE_DIR", "")
    if cache_dir:  # NUMBA_CACHE_DIR mirrors the source tree below it
        return Path(cache_dir) / _KERNELS.relative_to(_KERNELS.anchor)
    return _KERNELS / "__pycache__"


def _cache_key() -> str:
    import numba

    parts = [numba.__version__, sys.version, sys.platform]
    for src in sorted(_KERNELS.glob("*.py")):
        st = src.stat()
        parts.append(f"{src.name}:{st.st_mtime_ns}:{st.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _marker() -> Path:
    return _cache_dir() / f"lensrec-warm-{_cache_key()}.txt"


def _cached_models() -> set[str]:
    try:
        return set(_marker().read_text(encoding="utf-8").split())
    except OSError:
        return set()


def kernels_cached(models: Iterable[str]) -> bool:
    """True when a warm-up of each of these models completed with the current kernel
    sources (so their kernels only load from numba's cache)."""
    return set(models) <= _cached_models()


def mark_kernels_cached(models: Iterable[str]) -> None:
    """Record that these models' kernels are in the cache (best effort, atomic)."""
    try:
        path = _marker()
        names = sorted(_cached_models() | set(models))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(names) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only install: the next run compiles again, that is all
        _log.debug("cannot write the kernel cache marker: %s", exc)


#: a warm-up job that is not a model: the report's UMAP maps (umap-learn's numba functions)
UMAP_JOB = "umap-maps"


def _warm(name: str) -> float:
    """Compile (or load) one model's kernels, or the UMAP maps' (:data:`UMAP_JOB`); seconds
    taken."""
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == UMAP_JOB:
            from ..report.figures import warm_umap

            warm_umap()
        else:
            from ..models import MODELS
            from .run import warm_up_quietly

            warm_up_quietly(MODELS[name], {})  # the default settings' kernels
    return time.perf_counter() - t0


def _worker() -> None:
    """``python -m lensrec.experiments.warm``: warm up each model named on stdin, one per
    line, answering ``ok NAME SECONDS`` or ``fail NAME REASON`` on stdout."""
    logging.getLogger("lensrec").setLevel(logging.ERROR)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        try:
            seconds = _warm(name)
            print(f"ok {name} {seconds:.3f}", flush=True)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which re-raises
            print(f"fail {name} {' '.join(str(exc).split())}", flush=True)


class Precompiler:
    """Warm up models' kernels in ``processes`` worker processes, in the given order.

    The workers are plain ``python -m lensrec.experiments.warm`` subprocesses (never a fork
    of a process whose numba threads are running, never a re-import of the caller's
    script); each takes the next model as soon as it is free. ``wait(name)`` blocks until
    that model's warm-up is done (a failed one is left to the caller's own warm-up, which
    raises the real error); ``close()`` waits for all, stops the workers and records the
    models whose kernels are now cached; ``abort()`` stops at once.
    """

    def __init__(self, models: Iterable[str], processes: int | None = None):
        import queue
        import subprocess
        import threading

        self.models = list(dict.fromkeys(models))
        self.processes = processes or max(1, min(os.cpu_count() or 1, len(self.models)))
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.last_done = self.started
        self.failed: dict[str, str] = {}
        self._done = {name: threading.Event() for name in self.models}
        self._todo: queue.SimpleQueue[str] = queue.SimpleQueue()
        for name in self.models:
            self._todo.put(name)
        self._procs = []
        self._threads = []
        for _ in range(self.processes):
            proc = subprocess.Popen(
                [sys.executable, "-m", "lensrec.experiments.warm"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
            self._procs.append(proc)
            thread = threading.Thread(target=self._feed, args=(proc,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self, proc: Any) -> bool:
        import queue

        try:
            name = self._todo.get_nowait()
        except queue.Empty:
            proc.stdin.close()
            return False
        proc.stdin.write(name + "\n")
        proc.stdin.flush()
        return True

    def _feed(self, proc: Any) -> None:
        try:
            if not self._next(proc):
                return
            for line in proc.stdout:
                status, name, *rest = line.rstrip("\n").split(" ", 2)
                if name in self._done:
                    if status == "ok":
                        self.seconds[name] = float(rest[0]) if rest else 0.0
                    else:
                        self.failed[name] = rest[0] if rest else "?"
                    self.last_done = time.perf_counter()
                    self._done[name].set()
                if not self._next(proc):
                    break
        except (OSError, ValueError) as exc:  # a worker died: its models fall to the caller
            _log.debug("a kernel-compiling worker stopped: %s", exc)
        finally:
            proc.wait()
            self._release()

    def _release(self) -> None:
        """Once every worker is gone, nothing more will finish: stop every wait."""
        if all(p.poll() is not None for p in self._procs):
            for event in self._done.values():
                event.set()

    def wait(self, name: str) -> None:
        event = self._done.get(name)
        if event is not None:
            event.wait()

    def close(self) -> float:
        """Wait for every warm-up and the workers; record what is cached; the seconds from
        the start until the last warm-up finished."""
        for name in self.models:
            self.wait(name)
        for thread in self._threads:
            thread.join()
        mark_kernels_cached([m for m in self.models if m in self.seconds])
        return self.last_done - self.started

    def abort(self) -> None:
        """Stop the workers now (the caller failed)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()


if __name__ == "__main__":  # pragma: no cover - run by Precompiler in a subprocess
    _worker()
