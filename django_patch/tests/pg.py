"""A private PostgreSQL for the tests: Debian's ``postgresql`` binaries, a throw-away cluster.

:class:`PostgresServer` runs ``initdb`` in a new directory under the system temp dir, starts the
server with ``pg_ctl`` on a free loopback port (Unix socket in the same directory, ``fsync`` off),
and on :meth:`~PostgresServer.stop` shuts it down and removes the directory.  PostgreSQL refuses
to run as root: as root the cluster belongs to the ``postgres`` user (Debian's package creates
it; else ``nobody``) and every command runs as that user.  Trust authentication on loopback only;
superuser ``rozitech``.  Binaries: the newest ``/usr/lib/postgresql/<version>/bin``
(``apt-get install postgresql``; ``.ci/run`` installs it), else ``initdb`` on ``PATH``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SUPERUSER = "rozitech"


def bindir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is not installed."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away cluster; ``address`` is ``127.0.0.1:<port>`` once started."""

    def __init__(self) -> None:
        found = bindir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="rozitech-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(name)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            check=False,
            **self._as,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stderr[-2000:]}\n{tail}")

    def start(self) -> PostgresServer:
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                "-o", options, "-w", "-t", "60", "start",
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
