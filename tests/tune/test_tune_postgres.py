"""Distributed tuning: one optuna study in a real PostgreSQL server (Debian's binaries, a
cluster made in a temporary directory and started on a free loopback port by the fixture),
shared by two ``lensrec tune`` processes; bad and unreachable servers are one line, exit 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from lensrec.testing.cli import run_cli
from lensrec.testing.postgres_server import PostgresServer, postgres_bindir
from lensrec.testing.redis_server import free_port


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI (.ci/run installs it)")
    pytest.skip(f"{what} is not installed; CI installs it")


@pytest.fixture(scope="module")
def pg():
    if postgres_bindir() is None:
        _missing("PostgreSQL (Debian's postgresql package: /usr/lib/postgresql/*/bin/initdb)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("the PostgreSQL driver psycopg (the 'postgres' extra)")
    server = PostgresServer("tune")
    server.start()
    yield server
    server.stop()


def _tune_args(csv: Path, url: str, *more: str) -> list[str]:
    return ["tune", "--dataset", str(csv), "--model", "baseline", "--split", "random:0.2",
            "--storage", url, "--study", "shared", "--no-refit", *more]  # fmt: skip


def _trials_in_server(pg: PostgresServer, study: str) -> list[tuple[int, str]]:
    """(number, state) of the study's trials, read with SQL straight from the server."""
    import psycopg

    with psycopg.connect(pg.url) as conn:
        rows = conn.execute(
            "SELECT t.number, t.state FROM trials t JOIN studies s USING (study_id) "
            "WHERE s.study_name = %s ORDER BY t.number",
            (study,),
        ).fetchall()
    return [(int(n), str(s)) for n, s in rows]


def test_two_processes_add_trials_to_one_postgres_study(pg, csv, tmp_path):
    # a budget in seconds, not a trial total (one process could fill a total alone)
    args = _tune_args(csv, pg.url, "--trials", "100000", "--timeout", "8")
    procs = [run_cli(*args, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    added = [int(out.split(" added now")[0].rsplit("; ", 1)[1]) for out, _ in outs]
    assert all(a >= 1 for a in added), added  # both processes added trials
    rows = _trials_in_server(pg, "shared")
    assert len(rows) == sum(added)  # every trial either process added is in the server
    assert [n for n, _ in rows] == list(range(len(rows)))  # numbered once across processes
    assert all(state in ("COMPLETE", "PRUNED") for _, state in rows), rows
    for out, _ in outs:  # the URL is shown, the password is not
        assert f"lensrec:***@127.0.0.1:{pg.port}/tune" in out and pg.password not in out
    # a third process resumes: asks for two more than the study holds and adds exactly two
    more = run_cli(*_tune_args(csv, pg.url, "--trials", str(len(rows) + 2)), cwd=tmp_path)
    out, err = more.communicate(timeout=300)
    assert more.returncode == 0, err
    assert len(_trials_in_server(pg, "shared")) == len(rows) + 2, out


def _one_error_line(p: subprocess.Popen) -> str:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lensrec: error"), err
    return lines[0]


def test_unreachable_server_wrong_password_and_bad_url_are_one_line_exit_2(pg, csv, tmp_path):
    closed = free_port()  # nothing listens there
    line = _one_error_line(
        run_cli(
            *_tune_args(csv, f"postgresql://lensrec:s3cret@127.0.0.1:{closed}/tune"), cwd=tmp_path
        )
    )
    assert f"--storage postgresql://lensrec:***@127.0.0.1:{closed}/tune" in line
    assert "cannot open the study storage" in line and "s3cret" not in line
    wrong = pg.url.replace(pg.password, "wrong-password")
    line = _one_error_line(run_cli(*_tune_args(csv, wrong), cwd=tmp_path))
    assert f"127.0.0.1:{pg.port}/tune" in line and "password authentication failed" in line
    assert "wrong-password" not in line
    line = _one_error_line(
        run_cli(*_tune_args(csv, "postgresql://lensrec@127.0.0.1:notaport/tune"), cwd=tmp_path)
    )
    assert "--storage postgresql://lensrec@127.0.0.1:notaport/tune" in line
