"""The real servers tests start (redis-server, PostgreSQL) die with the process that started
them, even when it is killed with SIGKILL and runs no clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lensrec.testing.postgres_server import postgres_bindir
from lensrec.testing.redis_server import redis_server_binary

STARTS = {
    "redis": (
        "from pathlib import Path\n"
        "from lensrec.testing.redis_server import RedisServer\n"
        "s = RedisServer(Path({workdir!r})); s.start()\n"
    ),
    "postgres": (
        "from lensrec.testing.postgres_server import PostgresServer\n"
        "s = PostgresServer('x'); s.start()\n"
    ),
}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()  # exited, not yet reaped
    except OSError:
        return True


@pytest.mark.parametrize("server", sorted(STARTS))
def test_a_server_dies_with_its_killed_parent(server, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's prctl")
    present = redis_server_binary() if server == "redis" else postgres_bindir()
    if present is None:
        if os.environ.get("CI"):
            pytest.fail(f"{server} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{server} is not installed; CI installs it")
    pid_file = tmp_path / "pid"
    script = (
        STARTS[server].format(workdir=str(tmp_path))
        + f"open({str(pid_file)!r}, 'w').write(str(s.proc.pid))\n"
        + "import time; time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    pid = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None, "the parent exited before starting the server"
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        assert not _gone(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while not _gone(pid):
            assert time.monotonic() < deadline, f"{server} outlived its killed parent by 15 s"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
        if pid is not None and not _gone(pid):  # a failed run leaves no server behind either
            os.kill(pid, signal.SIGKILL)
