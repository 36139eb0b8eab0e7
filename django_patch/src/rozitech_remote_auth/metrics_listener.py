"""The private metrics listener: every gunicorn worker's metrics on an address of their own.

The gunicorn master (hook ``when_ready`` of :mod:`rozitech_remote_auth.gunicorn_hooks`) serves
the aggregate of all workers (prometheus-client multiprocess mode, files in
``PROMETHEUS_MULTIPROC_DIR``) with prometheus-client's own HTTP server on
``REMOTE_AUTH_METRICS_LISTEN`` (``host:port``, ``[v6]:port``).
Nothing of it goes through the app's URLconf or its nginx: a request to the app's public site never
reaches these metrics.  Any path answers (``/metrics`` is what Prometheus asks for).

Only a loopback or private address is accepted (127.0.0.0/8, ::1, RFC 1918, RFC 4193, link-local):
a host name is resolved and every address it resolves to must be one.  A wildcard (``0.0.0.0``,
``::``) or a public address raises :class:`ValueError` naming ``REMOTE_AUTH_METRICS_LISTEN``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

__all__ = ["ENV_VAR", "check_private", "parse_listen", "start", "start_from_env"]

#: Environment variable with the listen address (set by the systemd drop-in).
ENV_VAR = "REMOTE_AUTH_METRICS_LISTEN"


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9748"`` → ``("127.0.0.1", 9748)``; ``"[fd00::1]:9748"`` → ``("fd00::1", 9748)``.

    Raises ValueError (naming :data:`ENV_VAR`) without a host, a port, or with a port outside
    1-65535.
    """
    text = (value or "").strip()
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{ENV_VAR} must be host:port with a port in 1-65535, got {text!r}")
    return host, int(port_text)


def check_private(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, all loopback or private.

    Raises ValueError naming the first address that is not (or ``host`` when it does not resolve).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"{ENV_VAR}: cannot resolve {host!r}: {exc}") from exc
    addresses = sorted({str(info[4][0]).split("%")[0] for info in infos})
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.is_unspecified or not (address.is_loopback or address.is_private):
            raise ValueError(
                f"{ENV_VAR}={host}:{port} resolves to {text}, which is not a loopback or private "
                "address: the metrics would be public"
            )
    return addresses


def start(value: str, multiproc_dir: str) -> tuple[Any, Any]:
    """Serve the workers' aggregated metrics on ``value``; prometheus-client's ``(server, thread)``.

    ``multiproc_dir`` is ``PROMETHEUS_MULTIPROC_DIR``.  Raises ValueError on a bad or public
    address, OSError when the address cannot be bound.
    """
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    host, port = parse_listen(value)
    check_private(host, port)
    if not multiproc_dir:
        raise ValueError(f"{ENV_VAR} needs PROMETHEUS_MULTIPROC_DIR (the workers' metric files)")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    return start_http_server(port, addr=host, registry=registry)  # type: ignore[no-any-return]


def start_from_env() -> tuple[Any, Any] | None:
    """:func:`start` with :data:`ENV_VAR` and ``PROMETHEUS_MULTIPROC_DIR``; None without ENV_VAR."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    return start(value, os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip())
