"""Fixtures for the data tests: a loopback HTTP server and builders of small archives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lensrec.data import _download


class _Server:
    """Serves registered byte strings; counts hits per path; can cut a body short, or send
    half a body and then stall (until :meth:`release` or at most ``STALL_SECONDS``)."""

    STALL_SECONDS = 10.0

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.stall: set[str] = set()
        self.released = threading.Event()
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck client never holds a handler thread for long

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                with server.lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate or self.path in server.stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if self.path in server.stall:  # bounded: released by the test or timeout
                        server.released.wait(server.STALL_SECONDS)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, *, truncate: bool = False, stall: bool = False) -> str:
        self.routes[path] = body
        if truncate:
            self.truncate.add(path)
        if stall:
            self.stall.add(path)
        return self.url(path)

    def release(self) -> None:
        """Let stalled responses finish (closing the connection)."""
        self.released.set()


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """A real HTTP server on 127.0.0.1 (port 0), stopped after the test."""
    monkeypatch.setattr(_download, "CONNECT_TIMEOUT", 5.0)
    monkeypatch.setattr(_download, "READ_TIMEOUT", 5.0)
    srv = _Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)
