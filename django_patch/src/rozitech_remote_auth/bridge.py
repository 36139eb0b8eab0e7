"""Bridge for views that pin ``authentication_classes = [JWTAuthentication]`` (simplejwt).

Such views never consult ``DEFAULT_AUTHENTICATION_CLASSES``, so the remote class would not reach
them (R3 in docs/architecture.md).  :func:`install` replaces
``rest_framework_simplejwt.authentication.JWTAuthentication.authenticate`` with a wrapper that

1. lets :class:`~.authentication.RemoteJWTAuthentication` handle the request first; it returns
   ``None`` for tokens it does not own (simplejwt's own tokens: ``token_type`` claim), and
2. falls back to the original simplejwt method in that case.

The wrapper is marked (``__rozitech_bridge__ = True``, ``__wrapped__`` = original); installing
twice is a no-op and :func:`uninstall` puts the original back.  It is installed by
``RemoteAuthConfig.ready()`` only when ``rozitech_remote_auth`` is in ``INSTALLED_APPS`` (the
settings overlay adds it) and ``AUTH_SERVICE_BRIDGE_SIMPLEJWT`` is true: the patch lives in the
process only, no file is changed; removing the overlay (rollback) removes the bridge.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

__all__ = ["install", "is_installed", "uninstall"]

logger = logging.getLogger("rozitech_remote_auth")

_MARK = "__rozitech_bridge__"


def _target() -> Any:
    try:
        from rest_framework_simplejwt.authentication import (
            JWTAuthentication,
        )
    except ImportError:
        return None
    return JWTAuthentication


def is_installed() -> bool:
    """Whether simplejwt's ``JWTAuthentication.authenticate`` is currently bridged."""
    target = _target()
    return bool(target is not None and getattr(target.authenticate, _MARK, False))


def install() -> bool:
    """Bridge simplejwt's ``JWTAuthentication.authenticate``; True if (now) installed.

    Returns False when simplejwt is not importable (nothing to bridge).
    """
    target = _target()
    if target is None:
        return False
    original: Callable[..., Any] = target.authenticate
    if getattr(original, _MARK, False):
        return True

    from .authentication import RemoteJWTAuthentication

    @functools.wraps(original)
    def authenticate(self: Any, request: Any) -> Any:
        result = RemoteJWTAuthentication().authenticate(request)
        if result is not None:
            return result
        return original(self, request)

    setattr(authenticate, _MARK, True)
    target.authenticate = authenticate
    logger.info("bridged simplejwt JWTAuthentication.authenticate to the remote auth server")
    return True


def uninstall() -> bool:
    """Restore simplejwt's original method; True if a bridge was removed."""
    target = _target()
    if target is None or not getattr(target.authenticate, _MARK, False):
        return False
    target.authenticate = target.authenticate.__wrapped__
    logger.info("removed the simplejwt bridge")
    return True
