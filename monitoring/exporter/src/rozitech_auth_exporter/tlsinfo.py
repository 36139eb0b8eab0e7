"""Earliest certificate expiry of a TLS server's chain (what blackbox_exporter calls
``probe_ssl_earliest_cert_expiry``), with public ``ssl``/``cryptography`` APIs only.

The prober reads the expiry on its own health request's connection
(:func:`rozitech_auth_exporter.transport.peer_cert_expiry`); :func:`earliest_expiry` is the same reading on a
connection of its own, for a one-off check.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from rozitech_auth_exporter.transport import peer_cert_expiry


def earliest_expiry(url: str, ca_bundle: str | None, timeout: float) -> float:
    """Connect to ``url``'s host and port, verify its chain, return the earliest ``notAfter`` as Unix time.

    Python 3.13+ reads the whole verified chain (``SSLSocket.get_verified_chain``); older versions the
    verified leaf. Raises ``ssl.SSLError`` (verification failed), ``OSError`` (connect failed) or
    ``ValueError`` (no certificate dates).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    context = ssl.create_default_context(cafile=ca_bundle or None)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        expiry = peer_cert_expiry(tls)
    if expiry is None:
        raise ValueError(f"no certificate dates from {host}:{port}")
    return expiry
