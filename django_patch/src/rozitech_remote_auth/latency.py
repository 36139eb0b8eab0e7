"""A read timeout that follows the auth server's observed latency (RFC 6298; rule R10).

The fixed read timeout (``AUTH_SERVICE_TIMEOUT``, 5 s) is what a hanging auth server costs each
call that waits on it.  Against a server that answers in 20 ms, waiting 5 s only delays the 503.
:class:`LatencyEstimate` keeps TCP's smoothed round-trip time and its variation (RFC 6298 §2:
``SRTT``, ``RTTVAR``, alpha 1/8, beta 1/4) over the answers the auth server gave, and proposes

    timeout = clamp(SRTT + 4 x RTTVAR, AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN, AUTH_SERVICE_TIMEOUT)

Only answers are samples (Karn's rule: a timed-out call says nothing about the latency).  When
the server becomes slower than the proposed timeout, calls time out until the circuit opens; its
trial call always gets the full ``AUTH_SERVICE_TIMEOUT`` (see :mod:`.client`), and one slow answer
raises the estimate past that latency (RTTVAR takes a quarter of the jump, times 4).

The estimate is shared by the workers of one host through a small file (``latency`` in the
bulkhead's directory: ``<srtt> <rttvar>`` seconds, replaced atomically) when a path is given;
otherwise it is per process.  Before the first answer: ``AUTH_SERVICE_TIMEOUT``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

__all__ = ["LatencyEstimate"]

_ALPHA = 1 / 8
_BETA = 1 / 4
_K = 4


class LatencyEstimate:
    """RFC 6298 smoothed latency of the auth server's answers, seconds."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._srtt: float | None = None
        self._rttvar = 0.0

    def _load(self) -> None:
        if self.path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            srtt, rttvar = self.path.read_text().split()
            self._srtt, self._rttvar = float(srtt), float(rttvar)

    def _save(self) -> None:
        if self.path is None or self._srtt is None:
            return
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        with contextlib.suppress(OSError):
            tmp.write_text(f"{self._srtt:.6f} {self._rttvar:.6f}")
            os.replace(tmp, self.path)

    def observe(self, seconds: float) -> None:
        """Add one answer's latency (request sent to body read), seconds."""
        with self._lock:
            self._load()
            if self._srtt is None:
                self._srtt, self._rttvar = seconds, seconds / 2
            else:
                self._rttvar = (1 - _BETA) * self._rttvar + _BETA * abs(self._srtt - seconds)
                self._srtt = (1 - _ALPHA) * self._srtt + _ALPHA * seconds
            self._save()

    def expected(self) -> float | None:
        """``SRTT + 4 RTTVAR`` (how long an answer may normally take), ``None`` before any."""
        with self._lock:
            self._load()
            return None if self._srtt is None else self._srtt + _K * self._rttvar

    def timeout(self, floor: float, ceiling: float) -> float:
        """``clamp(SRTT + 4 RTTVAR, floor, ceiling)``; ``ceiling`` before any sample."""
        with self._lock:
            self._load()
            if self._srtt is None:
                return ceiling
            return min(ceiling, max(floor, self._srtt + _K * self._rttvar))
