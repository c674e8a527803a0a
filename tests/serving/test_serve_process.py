"""``lensrec serve`` as a real uvicorn process on a loopback port (marked ``network``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import lensrec
from lensrec.cli import main
from lensrec.testing.redis_server import free_port

pytestmark = pytest.mark.network


def _get(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _serve(args: list[str], port: int) -> subprocess.Popen:
    root = Path(lensrec.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "lensrec.cli", "serve", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lensrec serve exited: {proc.stderr.read().decode()[-500:]}")
        try:
            if _get(f"http://127.0.0.1:{port}/health", timeout=1)[0] in (200, 503):
                return proc
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("lensrec serve did not come up in 60 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_served_list_is_the_recommend_command_list(als_file, capsys):
    assert main(["recommend", str(als_file), "--user", "105", "-k", "8", "--json"]) == 0
    want = [row["item"] for row in json.loads(capsys.readouterr().out)["items"]]
    port = free_port()
    proc = _serve([str(als_file)], port)
    try:
        status, body = _get(f"http://127.0.0.1:{port}/users/105/recommendations?k=8")
        assert status == 200 and [row["item"] for row in body["items"]] == want
        status, body = _get(f"http://127.0.0.1:{port}/users/105/recommendations?k=0")
        assert status == 422
    finally:
        _stop(proc)
    assert proc.returncode is not None


def test_serve_from_redis_binds_loopback(als_file, redis_url):
    assert main(["export", str(als_file), "--to", redis_url, "-k", "10"]) == 0
    port = free_port()
    proc = _serve(["--redis", redis_url, "--workers", "2"], port)  # two processes
    try:
        status, body = _get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and body["backend"] == "redis" and body["max_k"] == 10
        for _ in range(4):  # whichever worker answers
            status, body = _get(f"http://127.0.0.1:{port}/users/999999/recommendations?k=3")
            assert status == 200 and body["fallback"] is True
        # bound to 127.0.0.1 only: the port is not open on another local address
        import socket

        other = socket.gethostbyname(socket.gethostname())
        if not other.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=1).close()
    finally:
        _stop(proc)


def test_busy_port_is_one_line_exit_2(als_file, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(als_file), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot listen on 127.0.0.1:{port}" in err
    assert main(["serve"]) == 2
    assert "give a model file to serve" in capsys.readouterr().err
