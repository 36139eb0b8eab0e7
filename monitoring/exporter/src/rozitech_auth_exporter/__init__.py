"""rozitech-auth-exporter: probes the Rozitech auth server and exposes the results to Prometheus.

Modules: ``config`` (flags/env/YAML), ``ratelimit`` (rate-limit header parsing), ``state`` (probe results and
the Prometheus collector), ``probe`` (the HTTP probes), ``tlsinfo`` (certificate chain expiry), ``server``
(the /metrics HTTP server), ``cli`` (the entry point).
"""

__version__ = "0.1.0"
METRIC_PREFIX = "rozitech_auth_probe_"
