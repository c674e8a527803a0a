"""Load test of ``lensrec serve`` on loopback: fixed request rates, p50 / p95 / p99 latency.

For each backend (``redis``: an export in a redis-server started here on a free loopback
port; ``embedded``: the model file in the server process) the script starts ``lensrec serve``
as its own process (uvicorn, one worker, bound to 127.0.0.1), then drives
``GET /users/{id}/recommendations?k=10`` open-loop: request ``i`` is due at ``t0 + i / rate``
whatever happened before, sent on one of ``--connections`` keep-alive connections, and its
latency runs from when it was due (queueing included, so a stall is not hidden). Users cycle
through the model's users plus 1 in 20 unknown ids (the popularity fallback). Everything is
bounded: ``rate x duration`` requests at most, a per-request timeout, a hard time cap.

``--rate`` takes several rates (``100,500,1000``): one run per rate and backend.
``--outage SECONDS`` (redis backend): a further run (at the last rate) during which Redis is saved and stopped
a third of the way in and started again ``SECONDS`` later; it prints the answers by status
(503s expected, no 500s, no timeouts) and how soon after Redis came back the first 200 came.

    python benchmarks/bench_serve.py                        # ml-100k ALS, 500 req/s, 30 s, both
    python benchmarks/bench_serve.py --rate 200 --duration 10 --backend redis
    python benchmarks/bench_serve.py --rate 100,500,1000 --duration 10   # several rates
    python benchmarks/bench_serve.py --workers 2                         # two server processes
    python benchmarks/bench_serve.py --model m.lrec --outage 3

There is no peer library for this measurement (the memory comparison against the usual
list-of-UUIDs encodings is ``lensrec export --memory-report``). Numbers depend on the machine's
load: the script prints the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


async def _read_response(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    status = int(line.split()[1])
    length = 0
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _drive(
    port: int,
    paths: list[str],
    rate: float,
    duration: float,
    connections: int,
    timeout: float,
    events: list[tuple[float, callable]] | None = None,
) -> list[tuple[float, float, str]]:
    """Open-loop load; returns (due time from start, latency s, status or error) per request."""
    n = int(rate * duration)
    queue: asyncio.Queue = asyncio.Queue()
    results: list[tuple[float, float, str]] = []
    t0 = time.perf_counter() + 0.2

    async def worker() -> None:
        conn = None
        while True:
            item = await queue.get()
            if item is None:
                break
            due, path = item
            try:
                if conn is None:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", port), timeout
                    )
                reader, writer = conn
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status = await asyncio.wait_for(_read_response(reader), timeout)
                results.append((due - t0, time.perf_counter() - due, str(status)))
            except TimeoutError:
                results.append((due - t0, time.perf_counter() - due, "timeout"))
                conn = _close(conn)
            except (ConnectionError, OSError, ValueError, IndexError):
                results.append((due - t0, time.perf_counter() - due, "error"))
                conn = _close(conn)
        _close(conn)

    def _close(conn):
        if conn is not None:
            conn[1].close()
        return None

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    pending = sorted(events or [], key=lambda e: e[0])
    loop = asyncio.get_running_loop()
    for i in range(n):
        due = t0 + i / rate
        while pending and due - t0 >= pending[0][0]:
            _, action = pending.pop(0)
            await loop.run_in_executor(None, action)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, paths[i % len(paths)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*workers), timeout + duration + 30)
    return results


def _serve(args: list[str], port: int) -> subprocess.Popen:
    import urllib.request

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lensrec.cli", "serve", *args, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("lensrec serve did not come up")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _summary(
    name: str, results: list[tuple[float, float, str]], rate: float, duration: float
) -> str:
    lat = np.array([r[1] for r in results if r[2] == "200"]) * 1000
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    span = max(r[0] + r[1] for r in results) if results else duration
    ok = f"{len(lat) / span:.0f}/s" if span > 0 else "-"
    if lat.size:
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        mx = lat.max()
    else:
        p50 = p95 = p99 = mx = float("nan")
    st = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    return (
        f"{name:<9} {rate:>6.0f}/s {duration:>5.0f}s  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
        f"p99 {p99:6.2f} ms  max {mx:7.2f} ms  ok {ok:>7}  [{st}]"
    )


def _paths(model_file: str, k: int) -> list[str]:
    import lensrec

    model = lensrec.load(model_file)
    users = model.user_ids_.ids.tolist()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(users))
    out = []
    for j, u in enumerate(order.tolist()):
        out.append(f"/users/{users[u]}/recommendations?k={k}")
        if j % 20 == 19:
            out.append(f"/users/{9_000_000 + j}/recommendations?k={k}")  # unknown: fallback
    return out


def _run(coro):  # uvloop when installed (the serve extra has it): less client CPU
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model file (default: ALS trained on all of ml-100k)")
    ap.add_argument("--backend", choices=["redis", "embedded", "both"], default="both")
    ap.add_argument(
        "--rate", default="500", help="requests per second; several: 100,500,1000 (one run each)"
    )
    ap.add_argument("--duration", type=float, default=30, help="seconds per run (max 120)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1, help="lensrec serve --workers")
    ap.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--outage", type=float, default=0, help="redis: stop Redis this long mid-run")
    args = ap.parse_args(argv)
    rates = [float(r) for r in str(args.rate).split(",") if r.strip()]
    args.rate = rates[-1]
    duration = min(args.duration, 120.0)
    sys.path.insert(0, str(ROOT))
    from lensrec.serving.export import export_redis
    from lensrec.testing.redis_server import RedisServer, free_port

    work = Path(tempfile.mkdtemp(prefix="lensrec-bench-serve-"))
    model_file = args.model
    if model_file is None:
        import lensrec
        from lensrec.models import ALS

        data = lensrec.load_dataset("ml-100k")
        model_file = str(work / "als.lrec")
        ALS(random_state=0).fit(data).save(model_file)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    paths = _paths(model_file, args.k)
    backends = ["redis", "embedded"] if args.backend == "both" else [args.backend]
    server = None
    try:
        for backend in backends:
            port = free_port()
            if backend == "redis":
                import lensrec

                server = RedisServer(work)
                server.start()
                export_redis(lensrec.load(model_file), server.url, k=100)
                proc = _serve(["--redis", server.url, "--workers", str(args.workers)], port)
            else:
                proc = _serve([model_file, "--workers", str(args.workers)], port)
            try:
                # warm-up: a second of requests, not counted
                _run(_drive(port, paths, min(rates[0], 200), 1.0, 8, args.timeout))
                for rate in rates:
                    res = _run(_drive(port, paths, rate, duration, args.connections, args.timeout))
                    print(_summary(backend, res, rate, duration), flush=True)
                if backend == "redis" and args.outage > 0:
                    _outage_run(server, port, paths, args, duration)
            finally:
                _stop(proc)
            if server is not None:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


def _outage_run(server, port: int, paths: list[str], args, duration: float) -> None:
    import redis

    stop_at = duration / 3
    back_at = stop_at + args.outage
    marks: dict[str, float] = {}

    def stop() -> None:
        redis.Redis.from_url(server.url).save()
        server.stop()
        marks["stopped"] = stop_at

    def start() -> None:
        server.start()
        marks["started"] = back_at

    res = _run(
        _drive(
            port,
            paths,
            args.rate,
            duration,
            args.connections,
            args.timeout,
            events=[(stop_at, stop), (back_at, start)],
        )
    )
    print(_summary("outage", res, args.rate, duration))
    after = sorted(r[0] + r[1] for r in res if r[2] == "200" and r[0] >= back_at)
    first_ok = after[0] - back_at if after else float("nan")
    bad = [r for r in res if r[2] not in ("200", "503")]
    print(
        f"  Redis stopped at {stop_at:.1f}s for {args.outage:.1f}s: "
        f"{sum(r[2] == '503' for r in res)} answers 503, {len(bad)} other failures "
        f"(500s, timeouts, errors); first 200 {first_ok:.2f}s after Redis was back"
    )


if __name__ == "__main__":
    sys.exit(main())
