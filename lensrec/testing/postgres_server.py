"""A real PostgreSQL server in a temporary directory on a free loopback port, for tests and
benchmarks (never a mock). Uses the server binaries of Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``) or any ``initdb`` on ``PATH``.

PostgreSQL refuses to run as root: under root the cluster is created and run as the
``postgres`` user when it exists, else ``nobody`` (the Python process switches user for the
child only: no ``su``, no password).

The server dies with the process that started it: on Linux it gets SIGINT (a fast
shutdown) when its parent exits, even when the parent is killed and runs no clean-up (a
pytest run stopped with ``kill -9`` would otherwise leave a server running).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ._process import die_with_parent
from .redis_server import free_port

__all__ = ["postgres_bindir", "PostgresServer"]


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.parent.name)) or (0,)


def postgres_bindir() -> Path | None:
    """The directory holding ``initdb``, ``postgres``, ``pg_isready`` and ``createdb``:
    ``$LENSREC_PG_BINDIR``, else the newest ``/usr/lib/postgresql/*/bin``, else ``PATH``."""
    env = os.environ.get("LENSREC_PG_BINDIR")
    candidates = [env] if env else []
    candidates += [
        str(Path(p).parent)
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)[::-1]
    ]
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for c in candidates:
        d = Path(c)
        if all((d / b).is_file() for b in ("initdb", "postgres", "pg_isready", "createdb")):
            return d
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as (only when we are root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One PostgreSQL cluster in a fresh temporary directory, listening on 127.0.0.1 only.

    ``start()`` runs ``initdb`` (password authentication over TCP, user ``lensrec`` with a
    random password), starts ``postgres`` as a child process and creates ``database``;
    ``stop()`` shuts it down (fast shutdown, then kill) and removes the directory.
    """

    def __init__(self, database: str = "lensrec", port: int | None = None, user: str = "lensrec"):
        self.database = database
        self.port = port or free_port()
        self.user = user
        self.password = secrets.token_hex(8)
        self.bindir = postgres_bindir()
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database (the driver chosen by the caller's installation)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _popen_kwargs(self) -> dict:
        account = _run_as()
        env = {**os.environ, "PGPASSWORD": self.password, "LC_ALL": "C"}
        kw: dict = {"cwd": str(self.workdir), "env": env}
        if account is not None:
            env["HOME"] = str(self.workdir)
            kw.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        return kw

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def start(self, timeout: float = 30.0) -> None:
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        # /tmp, not pytest's 0700 tree: the server's account must reach the directory
        self.workdir = Path(tempfile.mkdtemp(prefix="lensrec-pg-"))
        account = _run_as()
        pwfile = self.workdir / "pw"
        pwfile.write_text(self.password + "\n")
        if account is not None:
            for p in (self.workdir, pwfile):
                os.chown(p, account.pw_uid, account.pw_gid)
        kw = self._popen_kwargs()
        data = self.workdir / "data"
        try:
            subprocess.run(
                [self._bin("initdb"), "-D", str(data), "-U", self.user, "--pwfile", str(pwfile),
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--no-locale", "--no-sync"],
                check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, **kw,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            out = exc.stdout.decode(errors="replace").strip().splitlines()[-3:]
            self.stop()
            raise RuntimeError(f"initdb failed: {' | '.join(out)}") from None
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 (kept open for the child)
        try:
            self.proc = subprocess.Popen(
                [self._bin("postgres"), "-D", str(data), "-p", str(self.port),
                 "-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=40",
                 "-c", "shared_buffers=16MB"],
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(signal.SIGINT), **kw,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise RuntimeError(f"postgres exited with code {self.proc_code}: {tail}")
            ready = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw,
            )  # fmt: skip
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                tail = self._log_tail()
                self.stop()
                raise RuntimeError(f"postgres did not answer on port {self.port}: {tail}")
            time.sleep(0.1)
        created = subprocess.run(
            [self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             self.database],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, **kw,
        )  # fmt: skip
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"createdb failed: {created.stdout.decode(errors='replace')}")

    proc_code: int | None = None

    def _log_tail(self) -> str:
        try:
            lines = (self.workdir / "server.log").read_text(errors="replace").splitlines()  # type: ignore[operator]
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        """Fast shutdown (SIGINT), killed after 15 s; the directory removed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc_code = self.proc.returncode
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
