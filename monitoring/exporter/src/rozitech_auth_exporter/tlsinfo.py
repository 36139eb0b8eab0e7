"""Earliest certificate expiry of a TLS server's chain (what blackbox_exporter calls
``probe_ssl_earliest_cert_expiry``), using only the standard library.

Python 3.11's ``_ssl._SSLSocket.get_verified_chain()`` (public as ``SSLSocket.get_verified_chain`` from 3.13)
gives the chain as verified against the trust store; ``notAfter`` comes from each certificate's decoded info.
When that call is missing, the leaf certificate's ``notAfter`` is used.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit


def earliest_expiry(url: str, ca_bundle: str | None, timeout: float) -> float:
    """Connect to ``url``'s host and port, verify its chain, return the earliest ``notAfter`` as Unix time.

    Raises ``ssl.SSLError`` (verification failed), ``OSError`` (connect failed) or ``ValueError`` (no
    certificate dates).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    context = ssl.create_default_context(cafile=ca_bundle or None)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        expiries: list[float] = []
        sslobj = getattr(tls, "_sslobj", None)
        chain = getattr(tls, "get_verified_chain", None) or getattr(sslobj, "get_verified_chain", None)
        if chain is not None:
            for cert in chain() or []:
                info = cert.get_info()
                if info.get("notAfter"):
                    expiries.append(float(ssl.cert_time_to_seconds(info["notAfter"])))
        if not expiries:
            leaf = tls.getpeercert()
            if leaf and leaf.get("notAfter"):
                expiries.append(float(ssl.cert_time_to_seconds(str(leaf["notAfter"]))))
    if not expiries:
        raise ValueError(f"no certificate dates from {host}:{port}")
    return min(expiries)
