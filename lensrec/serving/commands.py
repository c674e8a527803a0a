"""``lensrec export`` and ``lensrec serve`` (registered through ``cli.COMMAND_MODULES``).

Nothing heavy at import time: redis, fastapi and uvicorn load when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..errors import ConfigError, MissingExtraError

__all__ = ["add_commands", "cmd_export", "cmd_serve"]

#: fault injection for tests: after this many blocks of users are written, the export
#: stops where it is (prints a line on stderr and sleeps until it is killed)
FAULT_ENV = "LENSREC_EXPORT_FAULT_AFTER_BLOCKS"
TOKEN_ENV = "LENSREC_SERVE_TOKEN"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fault_hook() -> Any:
    raw = os.environ.get(FAULT_ENV)
    if not raw:
        return None
    stop_after = int(raw)
    blocks = 0

    def hook(done: int, total: int) -> None:
        nonlocal blocks
        blocks += 1
        if blocks >= stop_after:
            _say(
                f"export: {FAULT_ENV}: stopped after {done} of {total} users; waiting to be killed"
            )
            while True:
                time.sleep(60)

    return hook


def cmd_export(args: argparse.Namespace) -> int:
    from ..models import load

    target = args.to
    model = load(args.model_file)
    if args.memory_report:
        if not target.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("--memory-report needs --to redis://HOST:PORT/DB")
        from .memory import memory_report

        print(memory_report(model, target, k=args.k).text())
        return 0
    if target.startswith(("redis://", "rediss://", "unix://")):
        from .export import export_redis

        summary = export_redis(
            model,
            target,
            k=args.k,
            prefix=args.prefix,
            scores=args.scores,
            similar=not args.no_similar,
            on_batch=_fault_hook(),
        )
    elif target.startswith("parquet:") or target.endswith(".parquet"):
        from .export import export_parquet

        path = target.removeprefix("parquet:")
        if not path:
            raise ConfigError("--to parquet:PATH names the output file")
        summary = export_parquet(model, path, k=args.k)
    else:
        raise ConfigError(
            f"--to takes redis://HOST:PORT/DB, parquet:PATH or a .parquet path, got {target!r}"
        )
    print(summary.text())
    return 0


def _check_port(host: str, port: int) -> None:
    """A clear one-line error (exit 2) for an address that cannot be listened on."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


#: the serve settings handed to worker processes (``--workers`` > 1) by the environment
CONFIG_ENV = "LENSREC_SERVE_CONFIG"


def _serve_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model_file": args.model_file,
        "redis": args.redis,
        "prefix": args.prefix,
        "max_k": args.max_k,
        "max_history": args.max_history,
        "max_body": args.max_body,
        "token": args.token or os.environ.get(TOKEN_ENV),
    }


def _backend(cfg: dict[str, Any]) -> Any:
    from .backends import EmbeddedBackend, RedisBackend

    if cfg["redis"]:
        return RedisBackend(cfg["redis"], prefix=cfg["prefix"], model_file=cfg["model_file"])
    if cfg["model_file"]:
        return EmbeddedBackend(cfg["model_file"], max_k=cfg["max_k"])
    raise ConfigError("give a model file to serve, or --redis URL to serve an export")


def _app(cfg: dict[str, Any], backend: Any = None) -> Any:
    from .app import create_app

    return create_app(
        backend if backend is not None else _backend(cfg),
        token=cfg["token"],
        max_history=cfg["max_history"],
        max_body=cfg["max_body"],
    )


def app_from_env() -> Any:
    """The app of one worker process (``lensrec serve --workers N``), from ``CONFIG_ENV``."""
    import json

    return _app(json.loads(os.environ[CONFIG_ENV]))


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("lensrec serve", "serve", "uvicorn") from None
    cfg = _serve_config(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    backend = _backend(cfg)  # errors (no model, bad file) before anything listens
    if args.redis:
        source = f"the export in {args.redis} (prefix {args.prefix!r})"
        from ._redis import RedisUnavailable

        try:
            backend.health()
        except RedisUnavailable as exc:  # serve anyway: 503 until Redis (or an export) is there
            _say(f"note: {exc}; answering 503 until that changes")
    else:
        source = args.model_file
    _check_port(args.host, args.port)
    _say(
        f"serving {source} on http://{args.host}:{args.port} with {args.workers} "
        f"worker{'s' if args.workers > 1 else ''} (OpenAPI: /docs; reload "
        f"{'enabled' if cfg['token'] else 'disabled'})"
    )
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 2,
    }
    if args.workers == 1:
        uvicorn.run(_app(cfg, backend), **common)
    else:
        import json

        os.environ[CONFIG_ENV] = json.dumps(cfg)
        uvicorn.run(
            "lensrec.serving.commands:app_from_env", factory=True, workers=args.workers, **common
        )
    return 0


def add_commands(sub: Any, add: Any) -> None:
    """Register ``export`` and ``serve``."""
    p = add(sub, "export", "write every user's top-k to Redis (or Parquet) for serving")
    p.add_argument("model_file")
    p.add_argument(
        "--to",
        required=True,
        help="redis://HOST:PORT/DB (a new version, published atomically), parquet:PATH or PATH.parquet",
    )
    p.add_argument("-k", "--k", type=int, default=100, help="list length stored per user")
    p.add_argument("--prefix", default="lr", help="Redis key prefix")
    p.add_argument("--scores", action="store_true", help="also store float16 scores (2x bytes)")
    p.add_argument(
        "--no-similar", action="store_true", help="do not store each item's similar items"
    )
    p.add_argument(
        "--memory-report",
        action="store_true",
        help="instead of exporting: load the lists in three encodings and print bytes per user "
        "by Redis's own accounting (MEMORY USAGE, INFO memory)",
    )
    p.set_defaults(func=cmd_export)

    p = add(sub, "serve", "HTTP API over a model file (embedded) or a Redis export")
    p.add_argument("model_file", nargs="?", help="model file (.lrec); with --redis: for fold-in")
    p.add_argument("--redis", metavar="URL", help="serve the export in redis://HOST:PORT/DB")
    p.add_argument("--prefix", default="lr", help="Redis key prefix of the export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--token", help=f"token that POST /admin/reload needs (default: ${TOKEN_ENV}; none: off)"
    )
    p.add_argument(
        "--max-k", type=int, default=100, help="largest k (embedded; Redis: the export's)"
    )
    p.add_argument("--max-history", type=int, default=1000, help="longest history POST accepts")
    p.add_argument("--max-body", type=int, default=64 * 1024, help="largest request body, bytes")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (each loads the model / reads Redis; /metrics is per process)",
    )
    p.set_defaults(func=cmd_serve)
