"""The HTTP API (FastAPI, extra ``serve``) over a backend (a model file or a Redis export).

Routes::

    GET  /users/{user_id}/recommendations?k=10&fallback=true
    GET  /items/{item_id}/similar?k=10
    POST /recommendations        {"items": [...], "ratings": [...], "k": 10, "fallback": true}
    GET  /health                 200 when the backend answers, else 503
    GET  /metrics                Prometheus text: requests, latency histogram, fallbacks
    POST /admin/reload           re-read the model file / forget the cached export version
                                 (needs ``Authorization: Bearer TOKEN``)
    GET  /openapi.json, /docs    the OpenAPI spec

Status codes: 404 an unknown item, or an unknown user when ``fallback=false``; 422 a ``k``
outside 1..K, a malformed id, a history over the limit or a body over the size limit;
503 Redis unreachable or nothing exported (the next request tries again, so the service
recovers by itself). A 500 is a bug.

Handlers run on the event loop and call the backend directly: a Redis query is one round
trip of about 0.1 ms and a model query (embedded) a fraction of a millisecond, less than a
hop through a thread pool costs (~0.2 ms of CPU per request, measured). A hung Redis costs
one socket timeout per cool-down (:class:`~.backends.RedisBackend`), not one per request.
"""

import hmac
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from ..errors import ConfigError, LensrecError, MissingExtraError, ModelFormatError, UnknownIdError
from ._redis import RedisUnavailable
from .backends import NoSimilarityError
from .encoding import MalformedIdError

__all__ = ["create_app", "Metrics", "DEFAULT_MAX_HISTORY", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_HISTORY = 1000
DEFAULT_MAX_BODY = 64 * 1024

#: latency histogram bucket bounds, seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _fastapi() -> Any:
    try:
        import fastapi
    except ImportError:  # pragma: no cover - the extra is in dev
        raise MissingExtraError("lensrec serve", "serve", "fastapi") from None
    return fastapi


class Metrics:
    """Request counts, a latency histogram per route and fallback counts (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.hist: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.fallbacks: dict[str, int] = {}
        self.started = time.time()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.hist.setdefault(route, [0] * (len(BUCKETS) + 1))
            for j, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[j] += 1
                    break
            else:
                h[-1] += 1
            self.sums[route] = self.sums.get(route, 0.0) + seconds

    def fallback(self, reason: str) -> None:
        label = "unknown user" if reason.startswith("unknown user") else reason
        with self._lock:
            self.fallbacks[label] = self.fallbacks.get(label, 0) + 1

    def text(self) -> str:
        """The Prometheus text exposition format."""

        def esc(v: str) -> str:
            return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        lines = [
            "# HELP lensrec_requests_total HTTP requests answered, by route, method and status.",
            "# TYPE lensrec_requests_total counter",
        ]
        with self._lock:
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(
                    f'lensrec_requests_total{{route="{esc(route)}",method="{method}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP lensrec_request_duration_seconds Time from request to response.",
                "# TYPE lensrec_request_duration_seconds histogram",
            ]
            for route, h in sorted(self.hist.items()):
                cum = 0
                for bound, n in zip((*BUCKETS, math.inf), h, strict=True):
                    cum += n
                    le = "+Inf" if bound == math.inf else repr(bound)
                    lines.append(
                        f'lensrec_request_duration_seconds_bucket{{route="{esc(route)}",le="{le}"}} {cum}'
                    )
                lines.append(
                    f'lensrec_request_duration_seconds_sum{{route="{esc(route)}"}} {self.sums[route]:.6f}'
                )
                lines.append(
                    f'lensrec_request_duration_seconds_count{{route="{esc(route)}"}} {cum}'
                )
            lines += [
                "# HELP lensrec_fallbacks_total Answers given by the popularity fallback, by reason.",
                "# TYPE lensrec_fallbacks_total counter",
            ]
            for reason, n in sorted(self.fallbacks.items()):
                lines.append(f'lensrec_fallbacks_total{{reason="{esc(reason)}"}} {n}')
        return "\n".join(lines) + "\n"


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 422 before anything parses them."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        detail = f"request body over {self.limit} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _send_json(send, 422, {"detail": detail})
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_json(send, 422, {"detail": detail})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Timing:
    """Count every request and time it, labelled by its route template."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # ids are matched with the path converter (ids may hold "/"); the label is the template
            label = (getattr(route, "path", None) or "unmatched").replace(":anyid}", "}")
            self.metrics.observe(label, scope["method"], status, time.perf_counter() - t0)


def _answer(answer: Any, **extra: Any) -> dict[str, Any]:
    """An ItemList as the JSON body (scores not stored in the export are null)."""
    body = answer.to_dict()
    for row in body["items"]:
        if not math.isfinite(row["score"]):
            row["score"] = None
    body.update(extra)
    return body


def _register_id_convertor() -> None:
    """``{name:anyid}``: any id text, "/" and control characters included (Starlette's
    ``path`` stops at a newline, which turned a malformed id into a 404 instead of a 422)."""
    from starlette.convertors import CONVERTOR_TYPES, PathConvertor, register_url_convertor

    class AnyIdConvertor(PathConvertor):
        regex = r"[\s\S]*"

    if "anyid" not in CONVERTOR_TYPES:
        register_url_convertor("anyid", AnyIdConvertor())


def create_app(
    backend: Any,
    *,
    token: str | None = None,
    max_history: int = DEFAULT_MAX_HISTORY,
    max_body: int = DEFAULT_MAX_BODY,
) -> Any:
    """The FastAPI application over ``backend`` (an :class:`~.backends.EmbeddedBackend` or
    :class:`~.backends.RedisBackend`). ``token`` enables ``POST /admin/reload``."""
    fastapi = _fastapi()
    from fastapi import Body, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from pydantic import BaseModel, Field

    from .. import __version__

    metrics = Metrics()
    _register_id_convertor()
    app = fastapi.FastAPI(
        title="lensrec",
        version=__version__,
        description=(
            "Top-k recommendations by external id, from a lensrec model file or a Redis export. "
            "Unknown users and empty histories get the popularity fallback, flagged."
        ),
    )
    app.state.backend = backend
    app.state.metrics = metrics

    class ItemRow(BaseModel):
        rank: int
        item: int | str
        title: str
        score: float | None = Field(description="null when the export stored no scores")
        n_train: int | None = None

    class Answer(BaseModel):
        items: list[ItemRow]
        score: str = Field(description="score, predicted, similarity or popularity")
        fallback: bool
        fallback_reason: str | None
        unknown_items: list[int | str]
        n_unknown: int
        k: int
        backend: str

    class HistoryQuery(BaseModel):
        items: list[int | str] = Field(
            description="external ids of the items the user interacted with (a user the model never saw)"
        )
        ratings: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
            default=None, description="their ratings, aligned (rating models)"
        )
        k: int = Field(default=10, ge=1, le=65535, description="list length, 1..K")
        fallback: bool = Field(
            default=True, description="false: 404 instead of the popularity fallback"
        )

    class Problem(BaseModel):
        detail: str

    problems: dict[int | str, dict[str, Any]] = {
        404: {"model": Problem, "description": "unknown id"},
        422: {"model": Problem, "description": "bad k, id, body or history"},
        503: {"model": Problem, "description": "the store is unreachable"},
    }

    def fail(status: int, detail: str) -> Any:
        return JSONResponse({"detail": detail}, status_code=status)

    def guarded(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except MalformedIdError as exc:
            return fail(422, str(exc))
        except RedisUnavailable as exc:
            return fail(503, str(exc))
        except UnknownIdError as exc:
            return fail(404, str(exc))
        except NoSimilarityError as exc:
            return fail(404, str(exc))
        except ModelFormatError as exc:
            return fail(503, f"the store cannot be read: {exc}")
        except ConfigError as exc:
            return fail(422, str(exc))
        except LensrecError as exc:
            return fail(503, str(exc))

    def check_k(k: int) -> None:
        top = backend.max_k
        if not 1 <= k <= top:
            raise ConfigError(f"k must be between 1 and {top}, got {k}")

    def respond(answer: Any, k: int) -> Any:
        if answer.fallback:
            metrics.fallback(answer.fallback)
        return JSONResponse(_answer(answer, k=k, backend=backend.kind))

    @app.get(
        "/users/{user_id:anyid}/recommendations",
        response_model=Answer,
        responses=problems,
        summary="top-k for a user the model was trained on",
    )
    async def user_recommendations(
        user_id: str,
        k: Annotated[
            int, Query(ge=1, le=65535, description="list length, 1..K (K: the export's or --max-k)")
        ] = 10,
        fallback: Annotated[bool, Query(description="false: 404 for an unknown user")] = True,
    ) -> Any:
        def run() -> Any:
            user = backend.parse_user(user_id)
            check_k(k)
            return respond(backend.recommend_user(user, k, fallback=fallback), k)

        return guarded(run)

    @app.get(
        "/items/{item_id:anyid}/similar",
        response_model=Answer,
        responses=problems,
        summary="the k items most similar to an item",
    )
    async def similar_items(
        item_id: str,
        k: Annotated[
            int, Query(ge=1, le=65535, description="list length, 1..K (K: the export's or --max-k)")
        ] = 10,
    ) -> Any:
        def run() -> Any:
            item = backend.parse_item(item_id)
            check_k(k)
            return respond(backend.similar(item, k), k)

        return guarded(run)

    @app.post(
        "/recommendations",
        response_model=Answer,
        responses=problems,
        summary="top-k for a user the model never saw, from their items (fold-in)",
    )
    async def history_recommendations(query: Annotated[HistoryQuery, Body()]) -> Any:
        def run() -> Any:
            if len(query.items) > max_history:
                raise ConfigError(
                    f"history of {len(query.items)} items is over the limit of {max_history}"
                )
            if query.ratings is not None and len(query.ratings) != len(query.items):
                raise ConfigError(
                    f"{len(query.ratings)} ratings for {len(query.items)} history items"
                )
            items = [backend.parse_item(v) for v in query.items]
            check_k(query.k)
            answer = backend.recommend_history(items, query.k, ratings=query.ratings)
            if answer.fallback and not query.fallback:
                return fail(404, f"no personalised answer ({answer.fallback}) and fallback=false")
            return respond(answer, query.k)

        return guarded(run)

    @app.get("/health", responses={503: {"model": Problem}}, summary="200 when the backend answers")
    async def health() -> Any:
        return guarded(lambda: JSONResponse(backend.health()))

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics_text() -> Any:
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post(
        "/admin/reload",
        responses={401: {"model": Problem}, 403: {"model": Problem}, 503: {"model": Problem}},
        summary="re-read the model file or the export version (needs the token)",
    )
    def reload(authorization: Annotated[str | None, Header()] = None) -> Any:
        if token is None:
            return fail(
                403, "reload is disabled: start the server with --token (or LENSREC_SERVE_TOKEN)"
            )
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return fail(401, "reload needs 'Authorization: Bearer TOKEN' with the server's token")
        return guarded(lambda: JSONResponse(backend.reload()))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: Any) -> Any:
        errors = exc.errors()
        parts = []
        for e in errors[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    app.add_middleware(_BodyLimit, limit=max_body)
    app.add_middleware(_Timing, metrics=metrics)
    return app
