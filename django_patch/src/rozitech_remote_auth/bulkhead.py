"""Bulkhead: how many workers of one host may wait on the auth server at once (rule R9).

With sync gunicorn workers a verification that waits on a hanging auth server holds a whole
worker; three such requests and the host answers nothing, ``/health/`` included.  The bulkhead
gives the host ``AUTH_SERVICE_BULKHEAD_SLOTS`` call slots (default 1, like Envoy's
``max_pending_requests`` or a resilience4j ``Bulkhead``); a verification that needs the auth
server takes a slot first:

* a free slot: taken at once;
* every slot busy for less than the wait budget (``AUTH_SERVICE_BULKHEAD_WAIT``, and no longer
  than an answer normally takes once :mod:`.latency` knows it): wait for one, at most until that
  holder has held it for the budget;
* every slot busy for longer (the auth server is slow or hanging): :class:`BulkheadFull` at once,
  with the seconds until the holder's call must end (its read timeout) as the ``Retry-After``.

Mechanism: one lock file per slot in ``AUTH_SERVICE_BULKHEAD_DIR``, taken with an exclusive
``flock`` through the ``filelock`` library (non-blocking try, then a bounded wait).  The kernel
releases the lock when the holder exits, so a killed worker never leaks a slot.  Next to each lock
file the holder writes ``<since> <until>`` (epoch seconds: when it took the slot, when its call
must end) and removes it before releasing; a held slot without that file was taken a moment ago.
The directory is per host and per app (the workers of one gunicorn master share it; by default
``$RUNTIME_DIRECTORY`` or the temporary directory, plus a hash of the user, the working directory
and ``AUTH_SERVICE_URL``).  Files
hold no token.  Redis is not used on purpose: the bound is about this host's workers, and it must
hold while Redis is down.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["Bulkhead", "BulkheadFull", "default_directory"]

#: How often a waiting worker re-tries the lock, seconds (filelock's poll interval).
POLL_SECONDS = 0.005


class BulkheadFull(Exception):
    """Every call slot of this host is busy; ``retry_after`` is in whole seconds (>= 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("every auth-server call slot of this host is busy")
        self.retry_after = retry_after


def default_directory(scope: str) -> Path:
    """``$RUNTIME_DIRECTORY`` (systemd) or the temporary directory, plus a per-app name.

    ``scope`` (the auth server URL), the user id and the working directory (the app root, the same
    for every worker of one gunicorn master) are hashed into the name, so two apps on one host do
    not share slots by accident.
    """
    base = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or tempfile.gettempdir()
    digest = hashlib.sha256(f"{os.getuid()}:{os.getcwd()}:{scope}".encode()).hexdigest()[:12]
    return Path(base) / f"rozitech-remote-auth-bulkhead-{digest}"


class Bulkhead:
    """``slots`` concurrent auth-server calls per host; waits at most ``wait`` seconds.

    Raises :class:`OSError` from :meth:`slot` only when the directory cannot be created or
    written; callers treat that as "no bulkhead" (see :mod:`.client`).
    """

    def __init__(self, directory: Path, slots: int, wait: float) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.directory = directory
        self.slots = slots
        self.wait = wait
        self._ready = False

    def _paths(self, index: int) -> tuple[Path, Path]:
        return self.directory / f"slot-{index}.lock", self.directory / f"slot-{index}.busy"

    def _prepare(self) -> None:
        if not self._ready:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._ready = True

    @staticmethod
    def _stamp(path: Path) -> tuple[float, float] | None:
        """``(since, until)`` of a held slot, or ``None`` (just taken, or being released)."""
        try:
            since, until = path.read_text().split()
            return float(since), float(until)
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def slot(self, call_seconds: float, wait: float | None = None) -> Iterator[None]:
        """Hold one slot for a call that ends at most ``call_seconds`` from now.

        ``wait`` (seconds, 0: never queue) bounds how old a holder may be for this call to queue
        behind it; the whole wait is bounded by the budget too.  Raises :class:`BulkheadFull`
        when no slot frees in time.
        """
        self._prepare()
        lock = self._take(call_seconds, self.wait if wait is None else wait)
        index, held = lock
        busy = self._paths(index)[1]
        now = time.time()
        try:
            tmp = busy.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(f"{now:.3f} {now + call_seconds:.3f}")
            os.replace(tmp, busy)
            yield
        finally:
            with contextlib.suppress(OSError):
                busy.unlink()
            held.release()

    def _take(self, call_seconds: float, patience: float) -> tuple[int, FileLock]:
        """A free slot, or the first one freed while its holder is younger than ``patience``;
        never longer than the budget (``wait``) in all."""
        locks = [FileLock(self._paths(i)[0], is_singleton=False) for i in range(self.slots)]
        give_up = time.monotonic() + max(self.wait, patience)
        while True:
            for index, lock in enumerate(locks):
                try:
                    lock.acquire(timeout=0)
                    return index, lock
                except Timeout:
                    continue
            # Every slot busy: wait on the youngest holder still within our patience, if any.
            now = time.time()
            best: tuple[float, int] | None = None
            earliest_end = math.inf
            for index in range(self.slots):
                stamp = self._stamp(self._paths(index)[1])
                held_for = 0.0 if stamp is None else max(0.0, now - stamp[0])
                if stamp is not None:
                    earliest_end = min(earliest_end, stamp[1])
                left = min(patience - held_for, give_up - time.monotonic())
                if left > 0 and (best is None or left > best[0]):
                    best = (left, index)
            if best is None:
                wait = earliest_end - time.time() if earliest_end < math.inf else call_seconds
                raise BulkheadFull(max(1, math.ceil(wait)))
            try:
                locks[best[1]].acquire(timeout=best[0], poll_interval=POLL_SECONDS)
                return best[1], locks[best[1]]
            except Timeout:
                continue  # that holder is past our patience now, or another worker took the slot
