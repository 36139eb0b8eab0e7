"""Circuit breaker towards the auth server (pybreaker), one per process (DESIGN §4.3).

Only transport failures count: refused/reset connections, timeouts, 5xx, answers outside the
contract.  4xx answers (401, 403, 429, ...) are answers, not failures: they never trip it.
After ``AUTH_SERVICE_BREAKER_FAIL_MAX`` consecutive failures the circuit opens and calls fail
at once (:class:`pybreaker.CircuitBreakerError`) for ``AUTH_SERVICE_BREAKER_RESET_TIMEOUT``
seconds; then one trial call is let through (half-open) and closes or re-opens it.

:func:`guarded` wraps pybreaker's ``calling()`` context manager: unlike
``CircuitBreaker.call``, it does not hold the breaker's lock while the guarded block runs, so
verifications of different tokens proceed in parallel within one process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pybreaker

from . import metrics

__all__ = ["CircuitOpen", "build_breaker", "guarded"]

logger = logging.getLogger("rozitech_remote_auth")

CircuitOpen = pybreaker.CircuitBreakerError


class _MetricsListener(pybreaker.CircuitBreakerListener):
    """Publishes state changes to ``rozitech_remote_auth_circuit_state``."""

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        metrics.set_circuit_state(new_state.name)
        old_name = old_state.name if old_state is not None else "none"
        log = logger.warning if new_state.name == "open" else logger.info
        log("auth server circuit breaker: %s -> %s", old_name, new_state.name)


def build_breaker(fail_max: int, reset_timeout: float) -> pybreaker.CircuitBreaker:
    """A fresh, closed breaker; a tripping failure re-raises the original exception."""
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        listeners=[_MetricsListener()],
        name="rozitech-auth-server",
        throw_new_error_on_trip=False,
    )
    metrics.set_circuit_state(breaker.current_state)
    return breaker


@contextlib.contextmanager
def guarded(breaker: pybreaker.CircuitBreaker) -> Iterator[None]:
    """Run the block under ``breaker``; exceptions escaping the block count as failures.

    Raises :data:`CircuitOpen` on entry while the circuit is open.
    """
    ctx: Any = breaker.calling()
    with ctx:
        yield
